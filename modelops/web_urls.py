from django.urls import path

from modelops import views

app_name = "modelops"
urlpatterns = [
    path("models/", views.models_home, name="home"),
    path("models/<slug:slug>/", views.workflow_models, name="workflow"),
    path("models/<slug:slug>/compare/", views.workflow_compare, name="compare"),
    path("models/<slug:slug>/register/", views.register, name="register"),
    path("models/<slug:slug>/deploy/", views.deploy, name="deploy"),
    path("models/<slug:slug>/promote/", views.promote, name="promote"),
    path("models/<slug:slug>/rollback/", views.rollback, name="rollback"),
    path("models/<slug:slug>/end/<str:role>/", views.end, name="end"),
    path("models/<slug:slug>/canary/", views.canary, name="canary"),
    path("models/<slug:slug>/train/", views.train, name="train"),
    path(
        "models/<slug:slug>/training-runs/<str:run_id>/cancel/",
        views.training_cancel,
        name="training-cancel",
    ),
    path("models/<slug:slug>/retrain-rule/", views.retrain_rule, name="retrain-rule"),
]
