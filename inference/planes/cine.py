"""Cine loops: per-frame plane probabilities → temporal smoothing → best frame per view.

A view's frame score is the classifier's probability of its label, P(plane), times P(sub-plane |
brain) for the head views. Scores are smoothed over time with a Gaussian (one frame's noise must
not win), the best frame is the arg-max of the smoothed score, and its flag says whether the view
looks optimal (score >= ``optimal_at``), sub-optimal (>= ``present_at``) or absent. The thresholds
were set on phantom sweeps (see ``weighted_frame_selection_score``) and have not been calibrated on
real cine loops.

The ACOUSLIC-AI challenge's weighted frame-selection score (WFSS) measures the choice: 1 for a frame
from the optimal range, 0.6 for a sub-optimal frame when an optimal one exists, 0 otherwise. For a
view absent from the sweep this project scores 1 when the choice is "absent" and 0 when a frame is
proposed (the challenge's own rule for that case is not restated here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from inference.planes import taxonomy
from inference.planes.model import PlanePrediction

OPTIMAL = "optimal"
SUB_OPTIMAL = "sub_optimal"
ABSENT = "absent"


@dataclass(frozen=True)
class BestFrame:
    """The chosen frame of one view: index (None when absent), smoothed score in [0, 1], flag."""

    view: str
    frame_index: int | None
    score: float
    flag: str


def view_scores(pred: PlanePrediction, view_key: str) -> np.ndarray:
    """(T,) per-frame probability that the frame shows ``view_key``."""
    v = taxonomy.view(view_key)
    if v.classifier_label is None:
        raise ValueError(f"view {view_key!r} is not recognised by the classifier")
    plane_key, sub_key = v.classifier_label
    s = pred.plane_probs[:, taxonomy.PLANE_KEYS.index(plane_key)].astype(np.float64)
    if sub_key is not None:
        s = s * pred.brain_probs[:, taxonomy.BRAIN_PLANE_KEYS.index(sub_key)]
    return s


def smooth(scores: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing along time (axis 0), edges renormalised; sigma 0 = unchanged."""
    scores = np.asarray(scores, np.float64)
    if sigma_frames <= 0 or len(scores) < 2:
        return scores.copy()
    r = max(1, round(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    # "full" then the centred slice: mode="same" returns max(len(scores), len(k)) samples, so a
    # cine shorter than the kernel would gain frames.
    n = len(scores)
    num = np.convolve(scores, k, mode="full")[r : r + n]
    den = np.convolve(np.ones_like(scores), k, mode="full")[r : r + n]
    return num / den


def recognised_views() -> tuple[str, ...]:
    return tuple(v.key for v in taxonomy.VIEWS if v.classifier_label is not None)


def best_frames(
    pred: PlanePrediction,
    views: Iterable[str] | None = None,
    *,
    frame_time_ms: float | None = None,
    sigma_ms: float = 60.0,
    sigma_frames: float | None = None,
    optimal_at: float = 0.6,
    present_at: float = 0.25,
) -> dict[str, BestFrame]:
    """Best frame per view (default: every view the classifier recognises).

    Smoothing width: ``sigma_frames`` if given, else ``sigma_ms`` / ``frame_time_ms`` (40 ms per frame
    when the frame time is unknown).
    """
    if sigma_frames is None:
        sigma_frames = sigma_ms / (frame_time_ms or 40.0)
    out = {}
    for key in views if views is not None else recognised_views():
        s = smooth(view_scores(pred, key), sigma_frames)
        if len(s) == 0:
            out[key] = BestFrame(key, None, 0.0, ABSENT)
            continue
        i = int(np.argmax(s))
        score = float(s[i])
        if score >= optimal_at:
            flag = OPTIMAL
        elif score >= present_at:
            flag = SUB_OPTIMAL
        else:
            flag = ABSENT
        out[key] = BestFrame(key, None if flag == ABSENT else i, round(score, 4), flag)
    return out


def frame_selection_score(
    chosen: int | None, truth: Mapping[str, Sequence[tuple[int, int]]]
) -> float:
    """ACOUSLIC-AI-style score of one choice against truth ranges (inclusive frame indices).

    truth: {"optimal": [(first, last), ...], "sub_optimal": [...]}.
    """

    def inside(ranges: Sequence[tuple[int, int]]) -> bool:
        return chosen is not None and any(a <= chosen <= b for a, b in ranges)

    has_opt = bool(truth.get("optimal"))
    has_any = has_opt or bool(truth.get("sub_optimal"))
    if chosen is None:
        return 0.0 if has_any else 1.0
    if inside(truth.get("optimal", ())):
        return 1.0
    if inside(truth.get("sub_optimal", ())):
        return 0.6 if has_opt else 1.0
    return 0.0


def weighted_frame_selection_score(
    choices: Mapping[str, BestFrame], truth: Mapping[str, Mapping[str, Sequence[tuple[int, int]]]]
) -> dict[str, float]:
    """Per-view scores of best-frame choices against a sweep's truth ranges (views in choices)."""
    return {
        view: frame_selection_score(bf.frame_index, truth.get(view, {}))
        for view, bf in choices.items()
    }
