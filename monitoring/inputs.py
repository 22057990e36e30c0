"""The monitoring range query, read the same way by the API and the dashboard page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from kernel.bounds import ID_MAX, bounded_int
from kernel.errors import InvalidInput
from monitoring.series import BUCKETS, MAX_BUCKETS, SeriesQuery

DEFAULT_RANGE = timedelta(hours=24)
# Far enough for any real range, and far from datetime's limits (no overflow in arithmetic).
EARLIEST_YEAR, LATEST_YEAR = 1971, 2999
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def _moment(params: Mapping[str, str], name: str) -> datetime | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidInput(f"{name}: not an ISO 8601 date and time", field=name)
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise InvalidInput(
            f"{name}: must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}", field=name
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


def _auto_bucket(span: timedelta) -> str:
    for name, step in BUCKETS.items():
        if span / step <= 96:
            return name
    return "1d"


def series_query(params: Mapping[str, str]) -> SeriesQuery:
    """``since``, ``until`` (ISO 8601; default the last 24 hours, or ``range``),
    ``bucket`` (5m, 15m, 1h, 6h, 1d; default chosen from the span), ``model_version`` (id)."""
    until = _moment(params, "until") or timezone.now()
    since = _moment(params, "since")
    range_name = (params.get("range") or "").strip()
    if since is None:
        if range_name and range_name not in RANGES:
            raise InvalidInput(f"range: must be one of {', '.join(RANGES)}", field="range")
        since = until - RANGES.get(range_name, DEFAULT_RANGE)
    if since >= until:
        raise InvalidInput("since: must be before until", field="since")
    bucket = (params.get("bucket") or "").strip() or _auto_bucket(until - since)
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket: must be one of {', '.join(BUCKETS)}", field="bucket")
    if (until - since) / BUCKETS[bucket] > MAX_BUCKETS:
        raise InvalidInput(
            f"bucket: {bucket} gives more than {MAX_BUCKETS} buckets over this range; "
            "choose a larger bucket or a shorter range",
            field="bucket",
        )
    raw_version = (params.get("model_version") or "").strip()
    version: int | None = None
    if raw_version:
        version = bounded_int(raw_version, name="model_version", minimum=1, maximum=ID_MAX)
    return SeriesQuery(since=since, until=until, bucket=bucket, model_version_id=version)
