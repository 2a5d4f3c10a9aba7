"""Goals: each benchmark records its verdicts here, and ``python -m bench`` prints them all
at the end, so one run says which goals were met and by how much."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    part: str
    goal: str  # e.g. "entry read >= 0.35x /health/live (SQLite)"
    figure: str  # e.g. "0.45x (1,520 / 3,380 req/s)"
    met: bool | None  # None: not judged (the run could not measure it)


GOALS: list[Goal] = []


def verdict(met: bool | None) -> str:
    return "not judged" if met is None else "met" if met else "NOT met"


def goal(part: str, goal: str, figure: str, met: bool | None) -> bool | None:
    """Record a goal and print its line."""
    GOALS.append(Goal(part, goal, figure, met))
    print(f"  goal: {goal}: {figure}: {verdict(met)}", flush=True)
    return met


def summary() -> str:
    width = max((len(g.goal) for g in GOALS), default=10)
    lines = [f"  {'part':<14}{'goal':<{width + 2}}{'figure':<44}verdict"]
    lines += [f"  {g.part:<14}{g.goal:<{width + 2}}{g.figure:<44}{verdict(g.met)}" for g in GOALS]
    return "\n".join(lines)
