from django.urls import path

from processing import apis

urlpatterns = [
    path("workflows/<slug:slug>/cases/", apis.CaseCreateApi.as_view(), name="case-create"),
]
