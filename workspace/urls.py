from django.urls import path

from workspace import apis

urlpatterns = [
    path("workflows/", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<slug:slug>/", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<slug:slug>/stats/", apis.WorkflowStatsApi.as_view(), name="workflow-stats"),
]
