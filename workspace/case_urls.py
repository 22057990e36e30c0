"""API URLs of the workspace's case export (the case list is on the case-submission URL)."""

from django.urls import path

from workspace import case_apis

urlpatterns = [
    path(
        "workflows/<slug:slug>/export/",
        case_apis.WorkflowExportApi.as_view(),
        name="workflow-export",
    ),
]
