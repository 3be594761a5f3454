"""Inter-rater agreement between two graders on categorical verdicts (pure functions).

Percentage agreement p_o = agreeing pairs / pairs. Cohen's kappa (Cohen 1960):
kappa = (p_o - p_e) / (1 - p_e), where p_e = sum over categories of the product of the two
graders' marginal proportions. When p_e = 1 (both graders used one and the same category for
every item) kappa is undefined: None is returned and the percentage agreement still stands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Agreement", "agreement", "cohen_kappa"]


@dataclass(frozen=True)
class Agreement:
    pairs: int
    agreeing: int
    percent: float | None
    """Percentage agreement, 0–100; None with no pairs."""
    kappa: float | None
    """Cohen's kappa; None with no pairs or when chance agreement is 1 (undefined)."""
    expected: float | None
    """Chance agreement p_e, 0–1."""


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two graders' verdicts, one ``(first, second)`` pair per graded item."""
    return agreement(pairs).kappa


def agreement(pairs: Iterable[tuple[str, str]]) -> Agreement:
    """Percentage agreement and Cohen's kappa of ``(first grader, second grader)`` verdicts."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return Agreement(0, 0, None, None, None)
    agreeing = sum(1 for a, b in pairs if a == b)
    p_o = agreeing / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    p_e = sum(first[c] * second[c] for c in set(first) | set(second)) / (n * n)
    kappa = None if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
    return Agreement(n, agreeing, 100.0 * p_o, kappa, p_e)
