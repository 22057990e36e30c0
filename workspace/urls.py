from django.urls import path

from workspace import apis

urlpatterns = [
    path("workflows/", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<slug:slug>/", apis.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<slug:slug>/stats/", apis.WorkflowStatsApi.as_view(), name="workflow-stats"),
    path(
        "workflows/<slug:slug>/archive/",
        apis.WorkflowArchiveApi.as_view(),
        name="workflow-archive",
    ),
    path(
        "workflows/<slug:slug>/unarchive/",
        apis.WorkflowUnarchiveApi.as_view(),
        name="workflow-unarchive",
    ),
    path("workflows/<slug:slug>/members/", apis.MemberListApi.as_view(), name="member-list"),
    path(
        "workflows/<slug:slug>/members/<str:username>/",
        apis.MemberDetailApi.as_view(),
        name="member-detail",
    ),
    path(
        "workflows/<slug:slug>/members/<str:username>/set-password-link/",
        apis.MemberLinkApi.as_view(),
        name="member-link",
    ),
    path(
        "workflows/<slug:slug>/label-examples/",
        apis.LabelExampleListApi.as_view(),
        name="label-example-list",
    ),
    path(
        "workflows/<slug:slug>/label-examples/<str:example_id>/",
        apis.LabelExampleDetailApi.as_view(),
        name="label-example-detail",
    ),
    path(
        "workflows/<slug:slug>/label-examples/<str:example_id>/image/",
        apis.LabelExampleImageApi.as_view(),
        name="label-example-image",
    ),
    path("workflows/<slug:slug>/tokens/", apis.TokenListApi.as_view(), name="token-list"),
    path(
        "workflows/<slug:slug>/tokens/<str:token_id>/",
        apis.TokenDetailApi.as_view(),
        name="token-detail",
    ),
]
