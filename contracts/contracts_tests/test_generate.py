"""The generated files in the tree are exactly what the generator produces."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from contracts import all_events
from contracts.generate import (
    ASYNCAPI,
    ENVELOPE,
    PROJECT_DIR,
    SCHEMAS,
    SNAPSHOTS,
    event_schema,
    main,
    out_of_date,
    render,
    schema_path,
    update_snapshots,
    write,
)


def test_generated_files_are_up_to_date() -> None:
    assert out_of_date() == [], "run `make contracts` (python -m contracts.generate) and commit"


def test_check_mode_exit_code(tmp_path: Path) -> None:
    assert main(["--check"]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 1


def test_generation_is_deterministic() -> None:
    first = render()
    assert render() == first
    for path, text in first.items():
        assert text.endswith("}\n"), path
        assert (
            json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + ("\n")
            == text
        ), f"{path} is not canonical"


def test_one_schema_file_per_event() -> None:
    expected = {f"{SCHEMAS}/{schema_path(c)}" for c in all_events()} | {ENVELOPE, ASYNCAPI}
    assert set(render()) == expected


def test_event_schemas_describe_the_event() -> None:
    for cls in all_events():
        schema = event_schema(cls)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == cls.dataschema()
        assert schema["$id"].endswith("/" + schema_path(cls))
        assert schema["title"] == cls.event_name
        assert schema["description"]
        assert schema["x-cloudevents-type"] == cls.event_type()
        assert schema["x-kafka-topic"] == cls.topic
        assert cls.aggregate_field in schema["required"]


def test_envelope_schema_is_valid() -> None:
    Draft202012Validator.check_schema(json.loads(render()[ENVELOPE]))


def test_event_json_validates_against_its_schema(make_event) -> None:
    for cls in all_events():
        validator = Draft202012Validator(
            event_schema(cls), format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(json.loads(make_event(cls).to_json()))
        minimal = {
            k: v
            for k, v in json.loads(make_event(cls).to_json()).items()
            if k in event_schema(cls)["required"]
        }
        validator.validate(minimal)
        cls.model_validate(minimal)


def test_write_removes_stale_schemas_only(tmp_path: Path) -> None:
    gone_schema = tmp_path / SCHEMAS / "old-context" / "Gone.v1.json"
    gone_snapshot = tmp_path / SNAPSHOTS / "old-context" / "Gone.v1.json"
    notes = tmp_path / SCHEMAS / "README.txt"
    for path in (gone_schema, gone_snapshot, notes):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")

    changed = write(tmp_path)

    assert f"{SCHEMAS}/old-context/Gone.v1.json" in changed
    assert not gone_schema.parent.exists()
    assert gone_snapshot.exists() and notes.exists()
    assert out_of_date(tmp_path) == []
    assert write(tmp_path) == []
    for name, text in render().items():
        assert (tmp_path / name).read_text() == text


def test_update_snapshots_never_overwrites_without_force(tmp_path: Path) -> None:
    events = all_events()
    released = tmp_path / SNAPSHOTS / schema_path(events[0])
    released.parent.mkdir(parents=True)
    released.write_text('{"released": true}\n')

    written = update_snapshots(tmp_path)

    assert released.read_text() == '{"released": true}\n'
    assert written == [f"{SNAPSHOTS}/{schema_path(c)}" for c in events[1:]]
    assert update_snapshots(tmp_path) == []
    assert update_snapshots(tmp_path, force=True) == [f"{SNAPSHOTS}/{schema_path(events[0])}"]
    assert json.loads(released.read_text()) == event_schema(events[0])


def test_snapshots_in_the_tree_use_the_generated_format() -> None:
    for snapshot in (PROJECT_DIR / SNAPSHOTS).rglob("*.json"):
        text = snapshot.read_text()
        assert (
            json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + ("\n")
            == text
        ), snapshot
