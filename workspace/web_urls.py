from django.urls import path

from workspace import case_views, views

app_name = "workspace"
urlpatterns = [
    path("workflows/new/", views.workflow_create_page, name="create"),
    path("workflows/<slug:slug>/settings/", views.settings_general, name="settings"),
    path("workflows/<slug:slug>/settings/labels/", views.settings_labels, name="settings-labels"),
    path("workflows/<slug:slug>/settings/review/", views.settings_review, name="settings-review"),
    path(
        "workflows/<slug:slug>/settings/members/",
        views.settings_members,
        name="settings-members",
    ),
    path("workflows/<slug:slug>/settings/tokens/", views.settings_tokens, name="settings-tokens"),
    path(
        "workflows/<slug:slug>/settings/training/",
        views.settings_training,
        name="settings-training",
    ),
    path("workflows/<slug:slug>/cases/", case_views.case_list, name="cases"),
    path("workflows/<slug:slug>/cases/<str:case_id>/", case_views.case_page, name="case"),
    path(
        "account/set-password/<uidb64>/<token>/",
        views.SetPasswordView.as_view(),
        name="set-password",
    ),
]
