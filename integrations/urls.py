from django.urls import path

from integrations import apis

PREFIX = "workflows/<slug:slug>/webhooks/"

urlpatterns = [
    path(PREFIX, apis.WebhookListApi.as_view(), name="webhook-list"),
    path(f"{PREFIX}<int:webhook_id>/", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        f"{PREFIX}<int:webhook_id>/rotate-secret/",
        apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        f"{PREFIX}<int:webhook_id>/deliveries/",
        apis.WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        f"{PREFIX}<int:webhook_id>/deliveries/<int:delivery_id>/redeliver/",
        apis.WebhookRedeliverApi.as_view(),
        name="webhook-redeliver",
    ),
]
