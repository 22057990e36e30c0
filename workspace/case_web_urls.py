"""Pages: a workflow's case list and one case with its story."""

from django.urls import path

from workspace import case_views

app_name = "workspace"
urlpatterns = [
    path("workflows/<slug:slug>/cases/", case_views.case_list, name="cases"),
    path("workflows/<slug:slug>/cases/<str:case_id>/", case_views.case_page, name="case"),
]
