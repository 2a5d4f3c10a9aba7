"""The ``citizen_contact`` and ``consent`` tables' queries: a citizen's addresses and
choices."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col

from notifications.persistence.tables import CitizenContact, Consent
from servicekit.repository import Repository


class ContactRepository(Repository):
    async def get(self, citizen_id: str) -> CitizenContact | None:
        return await self.db.get(CitizenContact, citizen_id)

    async def delete(self, contact: CitizenContact) -> None:
        await self.db.delete(contact)

    async def with_pending_token(self, token_hash: str) -> CitizenContact | None:
        """The contact whose pending address's link has this hash."""
        return (
            (
                await self.db.execute(
                    sa.select(CitizenContact).where(
                        col(CitizenContact.pending_email_token) == token_hash
                    )
                )
            )
            .scalars()
            .first()
        )

    async def consents(self, citizen_id: str, topic: str | None = None) -> list[Consent]:
        """The citizen's choices (of one topic, or all)."""
        query = sa.select(Consent).where(col(Consent.citizen_id) == citizen_id)
        if topic is not None:
            query = query.where(col(Consent.topic) == topic)
        return list((await self.db.execute(query)).scalars().all())

    async def get_consent(self, citizen_id: str, topic: str, channel: str) -> Consent | None:
        return await self.db.get(Consent, (citizen_id, topic, channel))

    def add_consent(self, consent: Consent) -> None:
        self.db.add(consent)

    async def delete_consents(self, citizen_id: str) -> None:
        await self.db.execute(sa.delete(Consent).where(col(Consent.citizen_id) == citizen_id))

    async def flush(self) -> None:
        await self.db.flush()
