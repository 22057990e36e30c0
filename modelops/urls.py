from django.urls import path

from modelops import apis

urlpatterns = [
    path(
        "workflows/<slug:slug>/model-versions/",
        apis.ModelVersionListApi.as_view(),
        name="model-version-list",
    ),
    path(
        "model-versions/<str:version_id>/",
        apis.ModelVersionDetailApi.as_view(),
        name="model-version-detail",
    ),
    path(
        "workflows/<slug:slug>/deployments/",
        apis.DeploymentListApi.as_view(),
        name="deployment-list",
    ),
    path(
        "workflows/<slug:slug>/deployments/promote/",
        apis.PromoteApi.as_view(),
        name="deployment-promote",
    ),
    path(
        "workflows/<slug:slug>/deployments/rollback/",
        apis.RollbackApi.as_view(),
        name="deployment-rollback",
    ),
    path(
        "workflows/<slug:slug>/deployments/canary/",
        apis.CanaryApi.as_view(),
        name="deployment-canary",
    ),
    path(
        "workflows/<slug:slug>/deployments/<str:role>/end/",
        apis.DeploymentEndApi.as_view(),
        name="deployment-end",
    ),
    path(
        "workflows/<slug:slug>/model-comparison/",
        apis.ComparisonApi.as_view(),
        name="model-comparison",
    ),
    path(
        "workflows/<slug:slug>/training-runs/",
        apis.TrainingRunListApi.as_view(),
        name="training-run-list",
    ),
    path(
        "training-runs/<str:run_id>/",
        apis.TrainingRunDetailApi.as_view(),
        name="training-run-detail",
    ),
    path(
        "training-runs/<str:run_id>/cancel/",
        apis.TrainingRunCancelApi.as_view(),
        name="training-run-cancel",
    ),
    path(
        "workflows/<slug:slug>/retrain-rule/",
        apis.RetrainRuleApi.as_view(),
        name="retrain-rule",
    ),
    path("cases/<str:case_id>/saliency/", apis.SaliencyApi.as_view(), name="case-saliency"),
]
