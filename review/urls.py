from django.urls import path

from review import apis

urlpatterns = [
    path("workflows/<slug:slug>/review/next/", apis.ReviewNextApi.as_view(), name="review-next"),
    path(
        "workflows/<slug:slug>/review/verdicts/",
        apis.VerdictsRecentApi.as_view(),
        name="review-verdicts-recent",
    ),
    path("workflows/<slug:slug>/review/stats/", apis.ReviewStatsApi.as_view(), name="review-stats"),
    path("workflows/<slug:slug>/review/queue/", apis.ReviewQueueApi.as_view(), name="review-queue"),
    path(
        "review-tasks/<int:task_id>/heartbeat/",
        apis.LeaseHeartbeatApi.as_view(),
        name="review-heartbeat",
    ),
    path(
        "review-tasks/<int:task_id>/verdict/",
        apis.VerdictSubmitApi.as_view(),
        name="review-verdict",
    ),
    path("review-tasks/<int:task_id>/skip/", apis.VerdictSkipApi.as_view(), name="review-skip"),
    path(
        "review-tasks/<int:task_id>/release/",
        apis.AssignmentReleaseApi.as_view(),
        name="review-release",
    ),
    path("verdicts/<int:verdict_id>/undo/", apis.VerdictUndoApi.as_view(), name="review-undo"),
    path(
        "verdicts/<int:verdict_id>/change-request/",
        apis.VerdictChangeRequestApi.as_view(),
        name="review-change-request",
    ),
    path(
        "verdicts/<int:verdict_id>/change-request/decide/",
        apis.VerdictChangeDecideApi.as_view(),
        name="review-change-decide",
    ),
]
