from __future__ import annotations

from typing import Any

import pytest

PUBLIC_URL = "https://93.184.215.14/hook"  # an address literal: no DNS in the tests


@pytest.fixture
def home(make_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    """A human-only workflow with an admin, a reviewer and an upstream system."""
    workflow = make_workflow("home", level="human_only")
    admin = make_user("ada")
    reviewer = make_user("rita")
    camera = make_user("camera")
    member(admin, workflow, review=True, admin=True)
    member(reviewer, workflow, review=True)
    member(camera, workflow, submit=True)
    return {
        "workflow": workflow,
        "admin": admin,
        "reviewer": reviewer,
        "camera": camera,
        "admin_client": client_for(admin),
        "reviewer_client": client_for(reviewer),
        "camera_client": client_for(camera),
    }
