from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automation.channels import alert_email
        from automation.selectors import step_down_latest
        from automation.services import alert_channel_register, automation_check_queue
        from modelops.hooks import provide_last_step_down
        from review.hooks import on_audit_label

        # An audit label is new evidence about automated decisions: check the level.
        on_audit_label(automation_check_queue)
        # The retraining rule "after a step down" reads the audit log's step downs.
        provide_last_step_down(step_down_latest)
        # New alerts reach the workflow's admins by email.
        alert_channel_register(alert_email)
