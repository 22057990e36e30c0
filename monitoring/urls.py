from django.urls import path

from monitoring import apis

urlpatterns = [
    path(
        "workflows/<slug:slug>/monitoring/",
        apis.MonitoringApi.as_view(),
        name="workflow-monitoring",
    ),
    path(
        "workflows/<slug:slug>/monitoring/settings/",
        apis.MonitoringSettingsApi.as_view(),
        name="workflow-monitoring-settings",
    ),
]
