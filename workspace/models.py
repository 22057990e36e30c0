"""A workflow's API tokens: each one is the key of its own upstream account.

An upstream system (a camera line, a scanner) is an account that may only submit cases
to one workflow. A token made on the workflow's Tokens page creates such an account
(``upstream~<slug>~<random>``: ``~`` is not allowed in a person's username, so it never
collides with one), a submit-only membership of the workflow, and the account's one
``accounts.ApiToken``. Cases it submits name that account, so each line's cases can be
told apart, and revoking the token also deactivates the account (docs/decisions.md D23).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import ApiToken
from workflows.models import Workflow


class WorkflowToken(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="tokens")
    token = models.OneToOneField(ApiToken, on_delete=models.CASCADE, related_name="workflow_token")
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_token"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-token__created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.token.name} of {self.workflow}"
