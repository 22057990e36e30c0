"""Alert channels: email to the workflow's admins (Django's email backend).

Other channels register with ``automation.services.alert_channel_register`` the same way.
Signed webhooks are not a channel: ``alert.fired`` / ``alert.resolved`` are written to the
outbox in the alert's own transaction (``automation.services._alert_event``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from automation.models import Alert

logger = logging.getLogger(__name__)


def alert_email(alert_id: int) -> int:
    """Email a new alert to the workflow's admins who have an address; how many got it."""
    from workflows.models import WorkflowMembership

    alert = Alert.objects.select_related("workflow").filter(pk=alert_id).first()
    if alert is None or not getattr(settings, "LOOPGATE_ALERT_EMAIL", True):
        return 0
    recipients = sorted(
        {
            email
            for email in WorkflowMembership.objects.filter(
                workflow=alert.workflow, can_admin=True, user__is_active=True
            ).values_list("user__email", flat=True)
            if email
        }
    )
    if not recipients:
        return 0
    subject = f"[Loopgate] {alert.workflow.name}: {alert.kind.replace('_', ' ')} alert"
    actions = (alert.data or {}).get("actions") or {}
    triggered = "".join(
        f"Triggered: {action['summary']}\n"
        for action in actions.values()
        if isinstance(action, dict) and action.get("summary")
    )
    body = (
        f"{alert.message}\n\n{triggered}"
        f"Workflow: {alert.workflow.name} ({alert.workflow.slug})\n"
        f"Raised: {alert.created_at.isoformat()}\n"
        f"Monitoring: /workflows/{alert.workflow.slug}/monitoring/\n"
    )
    send_mail(subject, body, None, recipients, fail_silently=False)
    return len(recipients)
