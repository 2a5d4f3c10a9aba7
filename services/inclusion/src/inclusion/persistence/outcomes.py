"""EDS assessments."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import col

from inclusion.persistence.tables import OutcomeAssessment
from servicekit.repository import Repository


class OutcomeRepository(Repository):
    async def stages(self, participant_id: uuid.UUID, programme_id: uuid.UUID) -> set[str]:
        """The stages already recorded for the participant in the programme."""
        return set(
            (
                await self.db.execute(
                    select(col(OutcomeAssessment.stage)).where(
                        col(OutcomeAssessment.participant_id) == participant_id,
                        col(OutcomeAssessment.programme_id) == programme_id,
                    )
                )
            ).scalars()
        )

    async def of_programme(self, programme_id: uuid.UUID) -> list[OutcomeAssessment]:
        return list(
            (
                await self.db.execute(
                    select(OutcomeAssessment).where(
                        col(OutcomeAssessment.programme_id) == programme_id
                    )
                )
            )
            .scalars()
            .all()
        )
