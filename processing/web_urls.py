from django.urls import path

from processing import views

app_name = "processing"
urlpatterns = [
    path("workflows/<slug:slug>/cases/upload/", views.case_upload, name="upload"),
]
