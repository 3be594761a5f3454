"""Criterion verdicts and plane scores.

Score (Salomon 2006, one point per criterion) = points met / points assessable; a criterion the
inputs cannot judge is ``not_assessable`` and counts in neither, so the score is never inflated or
deflated by a guess. The raw points are kept beside the score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from inference.quality.rubric import PlaneRubric

__all__ = ["CriterionResult", "PlaneQuality", "Verdict", "score_plane"]


class Verdict(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NOT_ASSESSABLE = "not_assessable"


@dataclass(frozen=True)
class CriterionResult:
    """One criterion judged: verdict, the evidence used (numbers, regions), and why."""

    key: str
    verdict: Verdict
    evidence: Mapping[str, Any] = field(default_factory=dict)
    rationale: str = ""
    points: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "verdict": self.verdict.value,
            "points": self.points,
            "evidence": _jsonable(dict(self.evidence)),
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class PlaneQuality:
    """All criteria of one plane judged, with the score."""

    plane: str
    results: tuple[CriterionResult, ...]
    points_met: int
    points_assessable: int
    points_total: int

    @property
    def score(self) -> float | None:
        """points met / points assessable, or None when nothing could be assessed."""
        return self.points_met / self.points_assessable if self.points_assessable else None

    def result(self, key: str) -> CriterionResult:
        for r in self.results:
            if r.key == key:
                return r
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        score = self.score
        return {
            "plane": self.plane,
            "score": None if score is None else round(score, 4),
            "points_met": self.points_met,
            "points_assessable": self.points_assessable,
            "points_total": self.points_total,
            "criteria": [r.to_dict() for r in self.results],
        }


def score_plane(rubric: PlaneRubric, results: Iterable[CriterionResult]) -> PlaneQuality:
    """Order ``results`` as the rubric does and score them; every rubric criterion must be judged
    exactly once (ValueError naming the missing or unknown key otherwise)."""
    by_key = {r.key: r for r in results}
    keys = [c.key for c in rubric.criteria]
    unknown = sorted(set(by_key) - set(keys))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a criterion of the {rubric.plane} rubric")
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise ValueError(f"{missing[0]}: criterion not judged")
    ordered = tuple(by_key[k] for k in keys)
    met = sum(r.points for r in ordered if r.verdict is Verdict.MET)
    assessable = sum(r.points for r in ordered if r.verdict is not Verdict.NOT_ASSESSABLE)
    return PlaneQuality(
        plane=rubric.plane,
        results=ordered,
        points_met=met,
        points_assessable=assessable,
        points_total=rubric.max_points,
    )


def _jsonable(value: Any) -> Any:
    """Evidence as plain JSON types (numpy scalars and tuples converted, floats rounded)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value
