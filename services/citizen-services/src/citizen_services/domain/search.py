"""What a search of the catalogue asks for and what it answers (plain values).

Citizens only ever get published entries; other statuses are for staff
(:func:`citizen_services.application.search.check_may_list`). The SQL is in
``persistence/search.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from citizen_services.domain.catalogue import ServiceStatus

WORD = re.compile(r"\w+", re.UNICODE)


class Sort(StrEnum):
    RELEVANCE = "relevance"
    NAME = "name"
    NAME_DESC = "-name"
    UPDATED = "updated_at"
    UPDATED_DESC = "-updated_at"


class Channel(StrEnum):
    ONLINE = "online_url"
    PHONE = "phone"
    VENUE = "venue"
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True)
class SearchServices:
    q: str | None = None
    group: str | None = None
    channel: Channel | None = None
    lgsl: int | None = None
    sort: Sort = Sort.RELEVANCE
    page: int = 1
    size: int = 20
    #: Citizens only ever get published entries; other statuses are for staff.
    status: ServiceStatus = ServiceStatus.PUBLISHED

    def words(self) -> list[str]:
        return WORD.findall(self.q or "")

    def cache_key(self) -> str:
        """The normalised query: equal for requests that must get the same page."""
        words = " ".join(self.words()).lower()
        return json.dumps(
            [
                words,
                self.group,
                self.channel,
                self.lgsl,
                self.sort,
                self.page,
                self.size,
                self.status,
            ]
        )


@dataclass(frozen=True)
class SearchResult:
    #: Rows of ``catalogue_service`` (each column an attribute, as on the model).
    items: list[Any]
    total: int
    #: The catalogue's change counter as of the search (read in the same statement).
    catalogue_version: int
