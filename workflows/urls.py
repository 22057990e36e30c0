from django.urls import path

from workflows import apis

urlpatterns = [
    path("cases/<str:case_id>/", apis.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<str:case_id>/events/", apis.CaseEventsApi.as_view(), name="case-events"),
    path("cases/<str:case_id>/image/", apis.CaseImageApi.as_view(), name="case-image"),
]
