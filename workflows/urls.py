from django.urls import path

from workflows import apis

urlpatterns = [
    path("workflows/", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<slug:slug>/", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<slug:slug>/cases/", apis.CaseCreateApi.as_view(), name="case-create"),
    path("workflows/<slug:slug>/stats/", apis.WorkflowStatsApi.as_view(), name="workflow-stats"),
    path("cases/<str:case_id>/", apis.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<str:case_id>/events/", apis.CaseEventsApi.as_view(), name="case-events"),
    path("cases/<str:case_id>/image/", apis.CaseImageApi.as_view(), name="case-image"),
]
