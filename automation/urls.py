from django.urls import path

from automation import apis

urlpatterns = [
    path(
        "workflows/<slug:slug>/automation/",
        apis.AutomationApi.as_view(),
        name="workflow-automation",
    ),
    path(
        "workflows/<slug:slug>/automation/evidence/",
        apis.AutomationEvidenceApi.as_view(),
        name="workflow-automation-evidence",
    ),
    path(
        "workflows/<slug:slug>/automation/threshold/",
        apis.AutomationThresholdApi.as_view(),
        name="workflow-automation-threshold",
    ),
    path(
        "workflows/<slug:slug>/automation/changes/",
        apis.LevelChangeListApi.as_view(),
        name="workflow-automation-changes",
    ),
    path("workflows/<slug:slug>/alerts/", apis.AlertListApi.as_view(), name="workflow-alerts"),
    path(
        "workflows/<slug:slug>/alerts/<int:alert_id>/acknowledge/",
        apis.AlertAcknowledgeApi.as_view(),
        name="workflow-alert-acknowledge",
    ),
    path(
        "workflows/<slug:slug>/alerts/<int:alert_id>/resolve/",
        apis.AlertResolveApi.as_view(),
        name="workflow-alert-resolve",
    ),
]
