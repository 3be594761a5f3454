"""Cine best-frame choice and the ACOUSLIC-AI-style score on phantom sweeps with known answers."""

import numpy as np
import pytest

from inference.phantom.sweep import make_sweep
from inference.planes import cine, taxonomy
from inference.planes.model import DEFAULT_WEIGHTS, PlanePrediction


def _probs_from_truth(sweep, noise: float, seed: int = 0) -> PlanePrediction:
    """Probabilities a perfect classifier of the sweep's labels would give, plus noise.

    Sub-optimal frames get half the optimal frames' probability, as the classifier is trained to.
    """
    rng = np.random.default_rng(seed)
    t = len(sweep.labels)
    pp = np.full((t, 6), 0.01)
    pb = np.full((t, 4), 0.03)
    for i, ((plane, sub), vq) in enumerate(zip(sweep.labels, sweep.view_quality, strict=True)):
        k = taxonomy.PLANE_KEYS.index(plane)
        weak = plane != "fetal_brain" and "sub_optimal" in vq.values()
        pp[i, k] = 0.45 if weak else 0.9
        if weak:
            pp[i, taxonomy.PLANE_KEYS.index("other")] = 0.45
        if sub:
            pb[i, taxonomy.BRAIN_PLANE_KEYS.index(sub)] = 0.85
    pp = np.clip(pp + rng.normal(0, noise, pp.shape), 1e-3, None)
    pb = np.clip(pb + rng.normal(0, noise, pb.shape), 1e-3, None)
    return PlanePrediction(pp / pp.sum(1, keepdims=True), pb / pb.sum(1, keepdims=True))


def test_best_frames_land_in_optimal_ranges():
    sweep = make_sweep(seed=3, n_frames=100, shape=(128, 160), render=False)
    pred = _probs_from_truth(sweep, noise=0.05)
    choices = cine.best_frames(pred, frame_time_ms=sweep.frame_time_ms)
    scores = cine.weighted_frame_selection_score(choices, sweep.truth)
    for view in ("head_trans_thalamic", "abdomen_ac", "femur_fl", "thorax_four_chamber"):
        assert choices[view].flag == cine.OPTIMAL, choices[view]
        assert scores[view] == 1.0, (view, choices[view], sweep.truth[view])
    # no cervix in this sweep: reported absent, which scores 1
    assert choices["maternal_cervix"].flag == cine.ABSENT
    assert choices["maternal_cervix"].frame_index is None
    assert scores["maternal_cervix"] == 1.0


def test_smoothing_outvotes_a_single_noisy_frame():
    s = np.array([0.1, 0.1, 0.95, 0.1, 0.1, 0.7, 0.75, 0.8, 0.75, 0.7, 0.1])
    assert int(np.argmax(cine.smooth(s, 1.5))) == 7
    assert np.allclose(cine.smooth(s, 0), s)


def test_frame_selection_score_rules():
    truth = {"optimal": [(10, 12)], "sub_optimal": [(5, 9), (13, 15)]}
    assert cine.frame_selection_score(11, truth) == 1.0
    assert cine.frame_selection_score(14, truth) == 0.6
    assert cine.frame_selection_score(30, truth) == 0.0
    assert cine.frame_selection_score(None, truth) == 0.0
    assert cine.frame_selection_score(None, {}) == 1.0
    assert cine.frame_selection_score(3, {}) == 0.0


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped plane weights not present")
def test_shipped_classifier_on_phantom_sweeps():
    """Measured on phantom sweeps (model card): the head and femur views chosen from their optimal
    ranges, the abdomen from its optimal range or next to it.

    The first two of the model card's ten evaluation sweeps (seeds 5000, 5001; training sweeps use
    seeds from 20000). On seed 5001 the abdomen's best frame is one frame before the optimal range
    (a sub-optimal high section, 0.6), as in the card's per-view figure of 0.92; no cervix is
    proposed in sweeps that have none (the earlier weights flagged one in every sweep). Phantom only.
    """
    from inference.planes.model import Predictor

    predictor = Predictor()
    views = ("head_trans_thalamic", "abdomen_ac", "femur_fl", "maternal_cervix")
    measured = {5000: 1.0, 5001: 0.6}  # abdomen score per sweep
    for seed, abdomen in measured.items():
        sweep = make_sweep(seed=seed, n_frames=150)
        choices = cine.best_frames(
            predictor.predict_cine(sweep.frames), views, frame_time_ms=sweep.frame_time_ms
        )
        scores = cine.weighted_frame_selection_score(choices, sweep.truth)
        expected = {"head_trans_thalamic": 1.0, "abdomen_ac": abdomen, "femur_fl": 1.0}
        assert scores == expected | {"maternal_cervix": 1.0}, (seed, choices)
        assert choices["head_trans_thalamic"].flag == cine.OPTIMAL, choices
        assert choices["maternal_cervix"].flag == cine.ABSENT, choices
