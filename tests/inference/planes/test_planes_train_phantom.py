"""Phantom training data never shares seeds with the sweeps that measure best-frame choice."""

import numpy as np

from inference.phantom.sweep import make_sweep
from inference.planes import taxonomy
from inference.planes.evaluate_cine import EVAL_FIRST_SEED, TUNE_FIRST_SEED
from inference.planes.train import (
    RESERVED_SWEEP_SEEDS,
    SWEEP_FRAME_SEED_STRIDE,
    _training_seed,
    is_reserved_seed,
    phantom_sweep_set,
    training_sweep_seeds,
)


def test_evaluation_and_tuning_sweeps_are_reserved():
    for first in (EVAL_FIRST_SEED, TUNE_FIRST_SEED):
        for sweep_seed in (first, first + 9, first + 99):
            assert sweep_seed in RESERVED_SWEEP_SEEDS
            assert is_reserved_seed(sweep_seed)  # the sweep's probe (sector_seed)
            assert is_reserved_seed(sweep_seed * SWEEP_FRAME_SEED_STRIDE)  # its first frame
            assert is_reserved_seed(sweep_seed * SWEEP_FRAME_SEED_STRIDE + 149)
    assert not is_reserved_seed(4999)
    assert not is_reserved_seed(5000 * SWEEP_FRAME_SEED_STRIDE + 50_000)  # between two sweeps
    assert not is_reserved_seed(7000 * SWEEP_FRAME_SEED_STRIDE)


def test_random_training_frame_seeds_skip_reserved_ones():
    class Fixed:
        """A generator that first offers reserved seeds, then a free one."""

        def __init__(self, values):
            self.values = list(values)

        def integers(self, lo, hi):
            return self.values.pop(0)

    assert _training_seed(Fixed([5003, 5003 * SWEEP_FRAME_SEED_STRIDE + 7, 123])) == 123
    rng = np.random.default_rng(0)
    assert not any(is_reserved_seed(_training_seed(rng)) for _ in range(1000))


def test_training_sweep_seeds_are_disjoint_from_reserved():
    seeds = training_sweep_seeds(60, seed=0)
    assert seeds[0] == 20_000 and len(seeds) == 60
    assert not set(seeds) & set(RESERVED_SWEEP_SEEDS)
    assert training_sweep_seeds(3, seed=1) == [21_000, 21_001, 21_002]


def test_sweep_training_frames_carry_the_sweep_labels():
    x, y, b = phantom_sweep_set(1, seed=0, size=64)
    n = len(x)
    assert x.shape == (n, 64, 64) and x.dtype == np.uint8 and 120 <= n < 200
    assert y.shape == (n, 6) and np.allclose(y.sum(1), 1)
    # the same sweep, truth only: plane and sub-plane per frame
    rng = np.random.default_rng([0, 98])
    sweep = make_sweep(seed=20_000, n_frames=int(rng.integers(120, 200)), render=False)
    assert len(sweep.labels) == n
    brain = taxonomy.PLANE_KEYS.index("fetal_brain")
    other = taxonomy.PLANE_KEYS.index("other")
    for i, ((plane, sub), vq) in enumerate(zip(sweep.labels, sweep.view_quality, strict=True)):
        k = taxonomy.PLANE_KEYS.index(plane)
        if plane == "fetal_brain":
            assert y[i, brain] == 1.0 and b[i] == taxonomy.BRAIN_PLANE_KEYS.index(sub)
        elif plane in {"fetal_abdomen", "fetal_femur"} and "optimal" not in vq.values():
            assert y[i, k] == 0.5 and y[i, other] == 0.5 and b[i] == -1  # not the standard plane
        else:
            assert y[i, k] == 1.0 and b[i] == -1
