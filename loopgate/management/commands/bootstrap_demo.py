"""Create the demo workflow, its model, a reviewer, an admin and an API token.

Safe to run again: existing rows are kept, and the generated passwords and the demo
users' API keys are kept in ``var/demo_credentials.json`` (outside the repository,
mode 0600) so that reruns print the same ones. The database holds only the keys'
hashes; a stored key that no longer works (revoked, expired, or a new database) is
replaced by a new token. The ``/metrics`` token is ``LOOPGATE_METRICS_TOKEN`` when set,
else the one in ``var/metrics_token`` (made on first use; ``scripts/demo.sh`` exports
the same file to the web server). ``--json`` prints one JSON object for scripts and
load tests.
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts.selectors import api_token_for_key
from accounts.services import api_token_create
from accounts.types import User
from decisions.routing import Level
from inference.loader import sha256_of
from inference.synthetic import DEMO_LABELS, generate_dataset
from modelops.models import Deployment, DeploymentRole, ModelVersion
from processing.services import case_create
from workflows.models import Workflow, WorkflowMembership
from workspace.services import workflow_creator_grant

DEMO_SLUG = "surface-inspection"
DEMO_MODEL_NAME = "surface-cnn"
ASSETS = Path(settings.BASE_DIR) / "inference" / "assets"
DEMO_WEIGHTS = ASSETS / "demo_model.pt"
DEMO_MODEL_CARD = ASSETS / "demo_model.json"


class Command(BaseCommand):
    help = "Create (or refresh) the demo workflow, model, users and API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--cases", type=int, default=0, help="Submit this many synthetic demo cases."
        )
        parser.add_argument(
            "--level",
            choices=[level.value for level in Level],
            default=None,
            help="Automation level for a newly created demo workflow (default: shadow).",
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            workflow = self._workflow(options["level"] or Level.SHADOW.value)
            self._model(workflow)
            credentials = self._credentials()
            users = {
                "reviewer": self._user("reviewer", credentials, review=True),
                "admin": self._user("admin", credentials, review=True, admin=True),
                "line-camera-1": self._user("line-camera-1", credentials, submit=True),
            }
            for user, right in ((users["reviewer"], "review"), (users["admin"], "admin")):
                self._membership(workflow, user, right)
            self._membership(workflow, users["line-camera-1"], "submit")
            # The workflow admin may create workflows of their own (from the product).
            workflow_creator_grant(user=users["admin"])
            tokens = {name: self._api_key(user, credentials) for name, user in users.items()}
            self._save_credentials(credentials)
        if options["cases"]:
            self._submit_cases(workflow, users["line-camera-1"], options["cases"])

        summary = {
            "workflow": workflow.slug,
            "api_token": tokens["line-camera-1"],
            "metrics_token": self._metrics_token(),
            "reviewer": {
                "username": "reviewer",
                "password": credentials["reviewer"],
                "api_token": tokens["reviewer"],
            },
            "admin": {
                "username": "admin",
                "password": credentials["admin"],
                "api_token": tokens["admin"],
            },
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self._print_summary(summary, options["base_url"])

    # --- pieces -----------------------------------------------------------------------

    def _workflow(self, level: str) -> Workflow:
        workflow, _ = Workflow.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "name": "Surface inspection (demo)",
                "description": "Machined parts photographed on the line: ok, or which defect.",
                "labels": list(DEMO_LABELS),
                "level": level,
                "confidence_threshold": 0.9,
                "audit_rate": 0.05,
                "target_accuracy": 0.9,
                "target_error": 0.05,
                "min_evidence": 100,
            },
        )
        return workflow

    def _model(self, workflow: Workflow) -> ModelVersion:
        card = json.loads(DEMO_MODEL_CARD.read_text())
        sha256 = sha256_of(DEMO_WEIGHTS)
        version = ModelVersion.objects.filter(name=DEMO_MODEL_NAME, sha256=sha256).first()
        if version is None:
            next_number = (
                ModelVersion.objects.filter(name=DEMO_MODEL_NAME).order_by("-version").first()
            )
            version = ModelVersion(
                name=DEMO_MODEL_NAME,
                version=(next_number.version + 1) if next_number else 1,
                architecture=card["architecture"],
                arch_kwargs=card.get("arch_kwargs") or {},
                labels=card["labels"],
                input_size=card["input_size"],
                mean=card["mean"],
                std=card["std"],
                sha256=sha256,
                provenance={
                    "source": "python -m inference.train_demo",
                    **{
                        k: card[k]
                        for k in ("seed", "hyper_parameters", "n_train", "n_test")
                        if k in card
                    },
                },
                metrics={k: v for k, v in card.items() if k.startswith(("held_out_", "test_"))},
            )
            with DEMO_WEIGHTS.open("rb") as handle:
                version.weights.save(
                    f"{DEMO_MODEL_NAME}-{sha256[:12]}.pt", File(handle), save=False
                )
            version.save()
        if not Deployment.objects.filter(
            workflow=workflow, role=DeploymentRole.SERVING, active=True
        ).exists():
            Deployment.objects.create(
                workflow=workflow, model_version=version, role=DeploymentRole.SERVING
            )
        return version

    def _credentials_path(self) -> Path:
        return Path(settings.VAR_DIR) / "demo_credentials.json"

    def _credentials(self) -> dict[str, Any]:
        path = self._credentials_path()
        stored = json.loads(path.read_text()) if path.exists() else {}
        for name in ("reviewer", "admin", "line-camera-1"):
            stored.setdefault(name, secrets.token_urlsafe(12))
        stored.setdefault("api_keys", {})
        return stored

    def _api_key(self, user: User, credentials: dict[str, Any]) -> str:
        """The demo key of ``user``: the stored one while it still works, else a new one."""
        keys = credentials["api_keys"]
        stored = keys.get(user.username)
        token = api_token_for_key(stored) if stored else None
        if token is None or token.user_id != user.pk or not token.is_usable():
            _token, keys[user.username] = api_token_create(user=user, name="demo")
        return keys[user.username]

    def _metrics_token(self) -> str:
        if settings.LOOPGATE_METRICS_TOKEN:
            return settings.LOOPGATE_METRICS_TOKEN
        path = Path(settings.VAR_DIR) / "metrics_token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def _save_credentials(self, credentials: dict[str, Any]) -> None:
        path = self._credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)

    def _user(
        self,
        username: str,
        credentials: dict[str, Any],
        *,
        review: bool = False,
        admin: bool = False,
        submit: bool = False,
    ) -> Any:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=username)
        if not user.check_password(credentials[username]):
            user.set_password(credentials[username])
        # Nobody in the demo is staff: the Django admin is for superusers only, and the
        # workflow admin works on the product's pages and API, scoped by membership.
        # Older demos made the admin staff with Django admin permissions; a rerun clears them.
        user.is_staff = False
        user.save()
        user.user_permissions.clear()
        return user

    def _membership(self, workflow: Workflow, user: User, right: str) -> None:
        membership, _ = WorkflowMembership.objects.get_or_create(workflow=workflow, user=user)
        membership.can_review = membership.can_review or right in {"review", "admin"}
        membership.can_admin = membership.can_admin or right == "admin"
        membership.can_submit = membership.can_submit or right == "submit"
        membership.save()

    def _submit_cases(self, workflow: Workflow, user: User, count: int) -> None:
        for index, (image, _label) in enumerate(generate_dataset(count, seed=20261123)):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            case_create(
                workflow=workflow,
                image_data=buffer.getvalue(),
                external_id=f"demo-{index:05d}",
                metadata={"station": "line-1/camera-a", "part": f"P-{10000 + index}"},
                submitted_by=user,
            )

    def _print_summary(self, summary: dict[str, Any], base_url: str) -> None:
        token = summary["api_token"]
        slug = summary["workflow"]
        self.stdout.write(
            self.style.SUCCESS("Loopgate demo is ready.")
            + f"""

  Review UI:      {base_url}/
  Automation:     {base_url}/automation/  (as the workflow admin)
  API docs:       {base_url}/api/docs/
  Metrics:        curl -H "Authorization: Bearer {summary["metrics_token"]}" {base_url}/metrics

  Reviewer:       reviewer / {summary["reviewer"]["password"]}
  Workflow admin: admin / {summary["admin"]["password"]}
  New workflow:   {base_url}/workflows/new/  (as the workflow admin)
  API token (upstream system line-camera-1): {token}

  Submit a case:
    curl -H "Authorization: Token {token}" -F image=@part.png -F external_id=part-1 \\
         -F 'metadata={{"station": "line-1"}}' {base_url}/api/v1/workflows/{slug}/cases/
  Read it:
    curl -H "Authorization: Token {token}" {base_url}/api/v1/cases/<id>/
"""
        )
