"""Repeated images: a perceptual hash at ingest links exact and near copies to the first
case of the workflow (docs/decisions.md D56)."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import case_unsaved, image_bytes
from workflows.images import image_phash, phash_distance
from workflows.models import PHASH_BANDS, Case, CaseEvent

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "part.png") -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def reencoded(data: bytes, quality: int = 70) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def submit(make_user: Any, make_workflow: Any, member: Any, client_for: Any) -> Any:
    workflow = make_workflow("line", level="human_only", serving=False)
    other = make_workflow("other", level="human_only", serving=False)
    user = make_user("camera")
    member(user, workflow, submit=True)
    member(user, other, submit=True)
    client = client_for(user)

    def post(data: bytes, external_id: str, slug: str = "line") -> Case:
        response = client.post(
            f"/api/v1/workflows/{slug}/cases/",
            {"image": upload(data), "external_id": external_id},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        assert "duplicate_of" in response.json()
        return Case.objects.get(pk=response.json()["id"])

    return post


def test_a_new_image_is_no_duplicate_and_carries_its_hash(submit: Any, clean_media: None) -> None:
    case = submit(image_bytes("ok", seed=1), "a")
    assert len(case.phash) == 16 and case.duplicate_of is None
    event = CaseEvent.objects.get(case=case, kind="received")
    assert event.data["phash"] == case.phash and event.data["duplicate_of"] is None


def test_exact_and_near_copies_link_to_the_first_case(submit: Any, clean_media: None) -> None:
    original = image_bytes("scratch", seed=2)
    first = submit(original, "first")
    again = submit(original, "again")
    jpeg = submit(reencoded(original), "again-as-jpeg")
    third = submit(original, "third")
    different = submit(image_bytes("scratch", seed=3), "different")
    assert again.duplicate_of_id == first.pk
    assert jpeg.duplicate_of_id == first.pk, phash_distance(jpeg.phash, first.phash)
    assert third.duplicate_of_id == first.pk, "linked to the first case, not a copy of it"
    assert different.duplicate_of_id is None


def test_duplicates_are_per_workflow(submit: Any, clean_media: None) -> None:
    original = image_bytes("ok", seed=4)
    submit(original, "x")
    elsewhere = submit(original, "x", slug="other")
    assert elsewhere.duplicate_of_id is None


def test_distinct_demo_images_stay_far_apart() -> None:
    """The near threshold (4 bits) sits well below the distance of distinct images."""
    hashes = [
        image_phash(Image.open(io.BytesIO(image_bytes(label, seed=seed))))
        for seed in range(40)
        for label in ("ok", "crack")
    ]
    closest = min(phash_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert closest > 4


def test_the_lookup_on_the_embedded_database_finds_the_same_copies(
    submit: Any, clean_media: None
) -> None:
    """Exact, near and new images through the API: the first case of the group, on
    whichever database this run uses (the property below compares with brute force)."""
    from workflows.models import Workflow
    from workflows.services import case_duplicate_root

    original = image_bytes("scratch", seed=7)
    first = submit(original, "first")
    submit(original, "again")
    jpeg = submit(reencoded(original), "jpeg")
    other = submit(image_bytes("ok", seed=8), "other")
    workflow = Workflow.objects.get(slug="line")
    new = image_phash(Image.open(io.BytesIO(image_bytes("crack", seed=9))))
    assert case_duplicate_root(workflow=workflow, phash=first.phash) == first.pk
    assert case_duplicate_root(workflow=workflow, phash=jpeg.phash) == first.pk
    assert case_duplicate_root(workflow=workflow, phash=other.phash) == other.pk
    assert case_duplicate_root(workflow=workflow, phash=new) is None


def bare_case(workflow: Any, phash: str, **fields: Any) -> Case:
    """A case row with only a hash to speak of (no stored image: the lookup reads none)."""
    fields.setdefault("id", uuid.uuid4())
    case: Case = case_unsaved(workflow, phash=phash, **fields)
    return case


def hex64(value: int) -> str:
    return f"{value:016x}"


def flipped(base: int, bits: list[int]) -> int:
    for bit in bits:
        base ^= 1 << bit
    return base


def band_bits(start: int, length: int) -> list[int]:
    """The bit positions (0 = least significant) of a band's hex digits."""
    return [
        63 - 4 * digit - bit for digit in range(start - 1, start - 1 + length) for bit in range(4)
    ]


@st.composite
def edge_offsets(draw: st.DrawFn) -> int:
    """The hard cases: one bit flipped in each band but one (4 bits, one band whole),
    sometimes with a fifth bit in the whole band (5 bits, no band whole: not a copy)."""
    kept = draw(st.integers(0, len(PHASH_BANDS) - 1))
    bits = [
        draw(st.sampled_from(band_bits(*band)))
        for index, band in enumerate(PHASH_BANDS)
        if index != kept
    ]
    if draw(st.booleans()):
        bits.append(draw(st.sampled_from(band_bits(*PHASH_BANDS[kept]))))
    return flipped(0, bits)


near_hashes = edge_offsets() | st.builds(
    flipped, st.just(0), st.lists(st.integers(0, 63), max_size=7, unique=True)
)


@hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.integers(0, 2**64 - 1),
    offsets=st.lists(
        st.tuples(near_hashes | st.integers(0, 2**64 - 1), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=24,
    ),
    probe=st.just(0) | edge_offsets(),
)
@pytest.mark.parametrize("at_once", [1000, 2], ids=["band-mates-at-once", "crowded"])
def test_the_banded_lookup_finds_what_a_scan_of_every_case_finds(
    make_workflow: Any,
    monkeypatch: Any,
    at_once: int,
    base: int,
    offsets: list[tuple[int, int, bool]],
    probe: int,
) -> None:
    """Multi-index hashing (D143): a hash within 4 bits of an earlier case's shares a
    whole band with it, so reading only the band-mates finds the same first case as
    measuring the distance to every case of the workflow. Ties in time go to the lower
    id, as the query orders them; a copy's own ``duplicate_of`` is the group's root."""
    from workflows import services

    monkeypatch.setattr(services, "BAND_MATES_AT_ONCE", at_once)
    with transaction.atomic():
        workflow = make_workflow(f"band-{uuid.uuid4().hex[:8]}", level="human_only", serving=False)
        start = timezone.now() - timedelta(hours=1)
        # Ids drawn from the example (ties in time are broken by id), never at random.
        ids = random.Random(base).sample(range(1, 10**9), len(offsets))
        rows: list[Case] = []
        for index, (offset, _step, linked) in enumerate(offsets):
            rows.append(
                bare_case(
                    workflow,
                    hex64(base ^ offset),
                    id=uuid.UUID(int=ids[index]),
                    duplicate_of=rows[0] if linked and index else None,
                )
            )
        Case.objects.bulk_create(rows)
        moment = start
        for row, (_offset, step, _linked) in zip(rows, offsets, strict=True):
            moment += timedelta(seconds=step)  # step 0: the same instant as the one before
            row.created_at = moment
        Case.objects.bulk_update(rows, ["created_at"])

        wanted = hex64(base ^ probe)
        near = [
            row
            for row in rows
            if phash_distance(row.phash, wanted) <= settings.LOOPGATE_DUPLICATE_MAX_DISTANCE
        ]
        expected = None
        if near:
            first = min(near, key=lambda row: (row.created_at, str(row.id)))
            expected = first.duplicate_of_id or first.id
        assert services.case_duplicate_root(workflow=workflow, phash=wanted) == expected
        transaction.set_rollback(True)


def test_an_exact_copy_is_found_however_crowded_its_bands(
    make_workflow: Any, settings: Any, monkeypatch: Any
) -> None:
    """Past BAND_MATES_AT_ONCE the bounded statement reads the newest window of each
    band; an exact copy older than the window is still found, through its own index."""
    from workflows import services
    from workflows.services import case_duplicate_root

    monkeypatch.setattr(services, "BAND_MATES_AT_ONCE", 1)
    settings.LOOPGATE_DUPLICATE_NEAR_WINDOW = 2
    workflow = make_workflow("crowded", level="human_only", serving=False)
    probe = "0123456789abcdef"
    # Newer than the copy, three cases share each band of it and nothing else.
    crowd = []
    for start, length in PHASH_BANDS:
        for fill in "fed":
            digits = [fill] * 16
            digits[start - 1 : start - 1 + length] = probe[start - 1 : start - 1 + length]
            crowd.append("".join(digits))
    rows = [bare_case(workflow, phash) for phash in [probe, *crowd]]
    for row in rows:
        row.save()
    assert all(phash_distance(probe, other) > 4 for other in crowd)
    assert case_duplicate_root(workflow=workflow, phash=probe) == rows[0].pk


@pytest.mark.parametrize("statistics", ["analyzed", "grown-since-analyze"])
def test_the_lookup_reads_the_bands_through_their_indexes(
    make_workflow: Any, statistics: str
) -> None:
    """With 5,000 cases in the workflow, both statements read the bands through their
    key indexes (and the exact copy through its own), never the workflow's cases in
    turn. Also when the workflow grew since the table's last ANALYZE, as a new workflow
    on a busy table does: the statistics then say it has no cases, and with the workflow
    and the digits in separate conditions the planner walked all 5,000 through an index
    that leads with the workflow (D150). PostgreSQL's plans; SQLite's are the next test's.
    """
    from workflows.services import _DUPLICATE_SQL, duplicate_lookup_parameters

    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    generator = random.Random(56)
    other = make_workflow("plan-other", level="human_only", serving=False)
    Case.objects.bulk_create(
        bare_case(other, hex64(generator.getrandbits(64))) for _ in range(2000)
    )
    workflow = make_workflow("plan", level="human_only", serving=False)
    if statistics == "grown-since-analyze":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE workflows_case")
    Case.objects.bulk_create(
        bare_case(workflow, hex64(generator.getrandbits(64))) for _ in range(5000)
    )
    parameters = {
        **duplicate_lookup_parameters(workflow_id=workflow.pk, phash="0123456789abcdef"),
        "window": 5000,
    }
    with connection.cursor() as cursor:
        if statistics == "analyzed":
            cursor.execute("ANALYZE workflows_case")
        for statement in _DUPLICATE_SQL["postgresql"]:
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            for index in range(len(PHASH_BANDS)):
                assert f"case_phash_band_key_{index}" in plan, plan
            assert "case_phash_key " in plan, plan
            scans = re.findall(
                r"(?:Index|Bitmap Index|Index Only) Scan (?:Backward )?(?:using|on) (\w+)", plan
            )
            assert set(scans) <= {
                "case_phash_key",
                *(f"case_phash_band_key_{i}" for i in range(5)),
            }, plan
            assert "Seq Scan" not in plan, plan


def test_the_embedded_database_reads_the_bands_through_their_indexes(
    make_workflow: Any,
) -> None:
    """SQLite matches the keys' expressions to their indexes too (they are written by
    hand in ``workflows.services``, as Django builds them in the indexes)."""
    from workflows.services import _DUPLICATE_SQL, duplicate_lookup_parameters

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan (this file runs again on SQLite)")
    workflow = make_workflow("plan", level="human_only", serving=False)
    parameters = duplicate_lookup_parameters(workflow_id=workflow.pk, phash="0123456789abcdef")
    with connection.cursor() as cursor:
        for statement in _DUPLICATE_SQL["sqlite"]:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            for index in range(len(PHASH_BANDS)):
                assert f"case_phash_band_key_{index}" in plan, plan
            assert "case_phash_key " in plan, plan
            assert "SCAN workflows_case" not in plan, plan


def test_the_embedded_database_runs_these_tests_too() -> None:
    """The embedded default (SQLite) runs its own statement (no bit strings there): this
    file's tests, run again on SQLite in a child process."""
    if connection.vendor != "postgresql":
        pytest.skip("already running on SQLite")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["LOOPGATE_REQUIRE_SERVICES"] = "0"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            __file__,
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not embedded_database_runs",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOOPGATE_DUPLICATE_MAX_DISTANCE", "5", "use 0 to 4 bits"),
        ("LOOPGATE_DUPLICATE_MAX_DISTANCE", "-1", "use 0 to 4 bits"),
        ("LOOPGATE_DUPLICATE_NEAR_WINDOW", "0", "use 1 or more cases"),
    ],
)
def test_a_setting_the_bands_cannot_honour_is_refused_at_start(
    name: str, value: str, message: str
) -> None:
    """Five bands find copies up to 4 bits apart: a larger distance would miss copies
    silently, so the platform refuses to start, naming the setting and its range."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPGATE_DUPLICATE_")}
    env.update(DJANGO_SETTINGS_MODULE="loopgate.settings", DJANGO_SECRET_KEY="x" * 50)
    env[name] = value
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"{name} {value}: {message}" in result.stderr
