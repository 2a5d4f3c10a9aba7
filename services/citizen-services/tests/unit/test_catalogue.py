"""application/catalogue.py on fake repositories: the catalogue's commands and queries,
without a database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from citizen_services.application import catalogue
from citizen_services.domain.catalogue import DuplicateService, InvalidTransition, ServiceStatus
from contracts.citizen_services import (
    ServicePublished,
    ServiceRetired,
    ServiceSuspended,
    ServiceUpdated,
)

from .fakes import FakeCatalogue, FakeUnitOfWork, make_service


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


async def test_a_new_entry_is_a_draft_with_its_first_history_row(uow: FakeUnitOfWork) -> None:
    entries = FakeCatalogue()
    service = await catalogue.create_service(
        uow=uow,
        entries=entries,
        command=catalogue.CreateService(name="Report a pothole", actor="staff-1"),
    )
    assert service.status == ServiceStatus.DRAFT.value and service.version == 1
    assert service.slug == service.service_code == "report-a-pothole"
    assert entries.services == {service.id: service}
    [history] = entries.history_rows
    assert (history.action, history.actor, history.version) == ("created", "staff-1", 1)
    assert uow.events == []  # a draft is not news
    assert uow.flushes == 1  # the unique indexes are checked inside the command


async def test_a_long_slug_makes_a_64_character_code(uow: FakeUnitOfWork) -> None:
    service = await catalogue.create_service(
        uow=uow, entries=FakeCatalogue(), command=catalogue.CreateService(name="x" * 63 + " y" * 20)
    )
    assert len(service.service_code) <= 64 and not service.service_code.endswith("-")


async def test_a_taken_slug_or_code_is_a_duplicate(uow: FakeUnitOfWork) -> None:
    entries = FakeCatalogue([make_service("Report a pothole")])
    with pytest.raises(DuplicateService):
        await catalogue.create_service(
            uow=uow, entries=entries, command=catalogue.CreateService(name="Report a pothole")
        )
    assert uow.flushes == 0


async def test_a_concurrent_create_caught_at_flush_is_a_duplicate(uow: FakeUnitOfWork) -> None:
    uow.flush_error = IntegrityError("INSERT", {}, Exception("unique"))
    with pytest.raises(DuplicateService):
        await catalogue.create_service(
            uow=uow, entries=FakeCatalogue(), command=catalogue.CreateService(name="Pothole")
        )


async def test_publishing_records_history_and_the_event(uow: FakeUnitOfWork) -> None:
    draft = make_service("Pothole", status="draft")
    entries = FakeCatalogue([draft])
    service = await catalogue.publish_service(
        uow=uow,
        entries=entries,
        command=catalogue.PublishService(service_id=draft.id, actor="staff-1"),
    )
    assert service.status == "published" and service.version == 2
    assert service.published_at is not None and entries.locked == [draft.id]
    [event] = uow.events
    assert isinstance(event, ServicePublished)
    assert (event.service_id, event.entry_version, event.published_by) == (draft.id, 2, "staff-1")
    assert [h.action for h in entries.history_rows] == ["published"]


async def test_a_retired_entry_cannot_be_published(uow: FakeUnitOfWork) -> None:
    retired = make_service("Old", status="retired")
    with pytest.raises(InvalidTransition):
        await catalogue.publish_service(
            uow=uow,
            entries=FakeCatalogue([retired]),
            command=catalogue.PublishService(service_id=retired.id),
        )
    assert uow.events == []


async def test_an_unknown_entry_is_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(catalogue.ServiceNotFound):
        await catalogue.publish_service(
            uow=uow,
            entries=FakeCatalogue(),
            command=catalogue.PublishService(service_id=uuid.uuid4()),
        )
    with pytest.raises(catalogue.ServiceNotFound):
        await catalogue.service_history(entries=FakeCatalogue(), service_id=uuid.uuid4())


def _update(service_id: uuid.UUID, version: int, **changes: Any) -> catalogue.UpdateService:
    return catalogue.UpdateService(
        service_id=service_id, expected_version=version, changes=changes, actor="staff-2"
    )


async def test_an_update_bumps_the_version_and_names_what_changed(uow: FakeUnitOfWork) -> None:
    entry = make_service("Pothole", keywords=["road"])
    entries = FakeCatalogue([entry])
    service = await catalogue.update_service(
        uow=uow,
        entries=entries,
        command=_update(entry.id, 1, description="Holes in roads", keywords=None, name=None),
    )
    assert service.version == 2 and service.keywords == [] and service.name == "Pothole"
    [event] = uow.events
    assert isinstance(event, ServiceUpdated)
    assert event.changed_fields == ["description", "keywords"]
    assert entries.history_rows[0].changed_fields == ["description", "keywords"]


async def test_an_update_that_changes_nothing_is_silent(uow: FakeUnitOfWork) -> None:
    entry = make_service("Pothole")
    service = await catalogue.update_service(
        uow=uow, entries=FakeCatalogue([entry]), command=_update(entry.id, 1, name="Pothole")
    )
    assert service.version == 1 and uow.events == []


async def test_a_stale_version_is_refused(uow: FakeUnitOfWork) -> None:
    entry = make_service("Pothole", version=3)
    with pytest.raises(catalogue.VersionMismatch) as caught:
        await catalogue.update_service(
            uow=uow, entries=FakeCatalogue([entry]), command=_update(entry.id, 2, name="New")
        )
    assert caught.value.extensions["current_version"] == 3


async def test_a_retired_entry_cannot_be_changed(uow: FakeUnitOfWork) -> None:
    entry = make_service("Pothole", status="retired")
    with pytest.raises(InvalidTransition):
        await catalogue.update_service(
            uow=uow, entries=FakeCatalogue([entry]), command=_update(entry.id, 1, name="New")
        )


async def test_suspend_and_retire_record_the_reason(uow: FakeUnitOfWork) -> None:
    entry = make_service("Pothole")
    entries = FakeCatalogue([entry])
    command = catalogue.ChangeStatus(
        service_id=entry.id, reason="Contractor change", actor="staff-3"
    )
    suspended = await catalogue.suspend_service(uow=uow, entries=entries, command=command)
    assert suspended.status == "suspended" and suspended.status_reason == "Contractor change"
    retired = await catalogue.retire_service(uow=uow, entries=entries, command=command)
    assert retired.status == "retired" and retired.version == 3
    assert [type(e) for e in uow.events] == [ServiceSuspended, ServiceRetired]
    assert [
        (h.action, h.reason)
        for h in await catalogue.service_history(entries=entries, service_id=entry.id)
    ] == [("suspended", "Contractor change"), ("retired", "Contractor change")]
    with pytest.raises(InvalidTransition):
        await catalogue.suspend_service(uow=uow, entries=entries, command=command)


async def test_an_import_names_every_taken_slug_and_writes_nothing(uow: FakeUnitOfWork) -> None:
    entries = FakeCatalogue([make_service("Pothole")])
    commands = [
        catalogue.CreateService(name="Bins"),
        catalogue.CreateService(name="Pothole"),
        catalogue.CreateService(name="Bins"),
    ]
    with pytest.raises(catalogue.ImportRejected) as caught:
        await catalogue.import_services(uow=uow, entries=entries, commands=commands)
    errors = caught.value.extensions["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {
        (2, "slug"),
        (2, "service_code"),
        (3, "slug"),
        (3, "service_code"),
    }
    assert len(entries.services) == 1 and entries.history_rows == []


async def test_an_import_adds_drafts(uow: FakeUnitOfWork) -> None:
    entries = FakeCatalogue()
    services = await catalogue.import_services(
        uow=uow,
        entries=entries,
        commands=[catalogue.CreateService(name="Bins"), catalogue.CreateService(name="Pothole")],
    )
    assert [s.status for s in services] == ["draft", "draft"]
    assert len(entries.services) == 2 and len(entries.history_rows) == 2
    assert uow.flushes == 1


async def test_an_import_raced_at_flush_is_rejected(uow: FakeUnitOfWork) -> None:
    uow.flush_error = IntegrityError("INSERT", {}, Exception("unique"))
    with pytest.raises(catalogue.ImportRejected):
        await catalogue.import_services(
            uow=uow, entries=FakeCatalogue(), commands=[catalogue.CreateService(name="Bins")]
        )


async def test_the_export_is_every_entry_by_name() -> None:
    entries = FakeCatalogue([make_service("B"), make_service("A", status="draft")])
    assert [s.name for s in await catalogue.all_services(entries=entries)] == ["A", "B"]


class FakeCache:
    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.values.get(key)

    def generation(self) -> int:
        return 1

    def put(self, key: Any, value: Any, generation: int | None) -> None:
        self.values[key] = value


def _reads(entries: FakeCatalogue) -> tuple[catalogue.EntryReads, list[uuid.UUID]]:
    loads: list[uuid.UUID] = []

    async def load(service_id: uuid.UUID) -> Any:
        loads.append(service_id)
        return await catalogue.find_service(entries=entries, service_id=service_id)

    reads = catalogue.EntryReads(
        cache=FakeCache(),
        load=load,  # type: ignore[arg-type]
        render=lambda row: row.name.encode(),
    )
    return reads, loads


async def test_a_published_entry_is_read_once_and_shown_to_anyone() -> None:
    entry = make_service("Pothole", version=4)
    reads, loads = _reads(FakeCatalogue([entry]))

    async def never() -> bool:
        raise AssertionError("a published entry needs no identity")

    for _ in range(2):
        view = await reads.read(entry.id, is_staff=never)
        assert (view.published, view.version, view.body) == (True, 4, b"Pothole")
    assert loads == [entry.id]


@pytest.mark.parametrize("status", ["draft", "suspended", "retired"])
async def test_other_entries_are_staff_s_only(status: str) -> None:
    entry = make_service("Pothole", status=status)
    reads, _ = _reads(FakeCatalogue([entry]))

    async def staff() -> bool:
        return True

    async def citizen() -> bool:
        return False

    assert not (await reads.read(entry.id, is_staff=staff)).published
    with pytest.raises(catalogue.ServiceNotFound):
        await reads.read(entry.id, is_staff=citizen)


async def test_reading_an_unknown_entry_is_not_found() -> None:
    reads, _ = _reads(FakeCatalogue())

    async def staff() -> bool:
        return True

    with pytest.raises(catalogue.ServiceNotFound):
        await reads.read(uuid.uuid4(), is_staff=staff)
