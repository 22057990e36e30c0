from django.urls import path

from processing import apis

urlpatterns = [
    path("workflows/<slug:slug>/cases/", apis.CaseCreateApi.as_view(), name="case-create"),
    path(
        "workflows/<slug:slug>/cases/bulk/",
        apis.CaseBulkCreateApi.as_view(),
        name="case-bulk-create",
    ),
    path(
        "workflows/<slug:slug>/fallback/",
        apis.WorkflowFallbackApi.as_view(),
        name="workflow-fallback",
    ),
    path("cases/<str:case_id>/retry/", apis.CaseRetryApi.as_view(), name="case-retry"),
]
