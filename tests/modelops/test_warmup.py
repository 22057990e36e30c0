"""Worker warm-up: a new worker process loads the deployed models before the first case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelops.runtime import models_warm, predict_images
from tests.modelops import factories

pytestmark = pytest.mark.django_db


def test_deployed_versions_are_loaded_before_the_first_case(two_versions: Any) -> None:
    serving, shadow = two_versions
    assert sorted(models_warm()) == sorted([serving.tag, shadow.tag])
    # Served from the process's cache from now on: the files are no longer read.
    for version in (serving, shadow):
        Path(version.weights.path).unlink()
        results = predict_images(version, [factories.part_image("stain", 1)])
        assert len(results) == 1 and results[0].label in factories.PART_LABELS


def test_a_version_that_cannot_load_is_logged_and_skipped(two_versions: Any, caplog: Any) -> None:
    serving, shadow = two_versions
    Path(shadow.weights.path).write_bytes(b"not a model")
    assert models_warm() == [serving.tag]
    assert any(shadow.tag in record.getMessage() for record in caplog.records)


def test_an_inactive_version_is_not_loaded(parts_workflow: Any, weights_file: Any) -> None:
    factories.version_create(parts_workflow, weights_file(seed=9), factories.PART_LABELS)
    assert models_warm() == []
