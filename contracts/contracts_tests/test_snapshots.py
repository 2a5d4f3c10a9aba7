"""Every released event schema stays backward compatible with its first release."""

from __future__ import annotations

import json

import pytest

from contracts import Event, all_events
from contracts.compat import breaking_changes
from contracts.generate import PROJECT_DIR, SNAPSHOTS, event_schema, schema_path

SNAPSHOT_DIR = PROJECT_DIR / SNAPSHOTS
HOW_TO = (
    "A breaking change needs a new major version: a new event class with `major = 2` on a new "
    "topic `<context>.<aggregate>.v2` (see docs/contracts.md)."
)


@pytest.mark.parametrize("cls", all_events(), ids=lambda c: c.event_type())
def test_event_is_compatible_with_its_snapshot(cls: type[Event]) -> None:
    snapshot = SNAPSHOT_DIR / schema_path(cls)
    assert snapshot.is_file(), (
        f"{cls.event_type()} has no snapshot; once its schema is final, run "
        "`python -m contracts.generate --update-snapshots` and commit "
        f"contracts/{SNAPSHOTS}/{schema_path(cls)}"
    )
    problems = breaking_changes(json.loads(snapshot.read_text()), event_schema(cls))
    assert problems == [], f"{cls.event_type()} breaks its released schema: {problems}. {HOW_TO}"


def test_no_released_event_was_removed() -> None:
    current = {schema_path(cls) for cls in all_events()}
    snapshots = {p.relative_to(SNAPSHOT_DIR).as_posix() for p in SNAPSHOT_DIR.rglob("*.json")}
    removed = sorted(snapshots - current)
    assert removed == [], (
        f"released events no longer exist: {removed}. Removing (or renaming) an event breaks "
        "its consumers; retire it only when nobody consumes it, deleting its snapshot too."
    )
