"""Classifier: shapes, dtypes, batch independence, weights round trip, input preparation."""

import numpy as np
import pytest
import torch

from inference.phantom import make_frame
from inference.planes.model import (
    DEFAULT_WEIGHTS,
    PlaneNet,
    Predictor,
    SonoNetReference,
    count_parameters,
    save_weights,
)
from inference.planes.preprocess import fov_bbox, letterbox, prepare, prepare_cine


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "planes.pt"
    save_weights(PlaneNet().eval(), path, {"width": 24, "version": "test-random"})
    return Predictor(path)


def test_network_shapes_and_size():
    net = PlaneNet().eval()
    with torch.no_grad():
        lp, lb = net(torch.rand(3, 1, 160, 160))
    assert lp.shape == (3, 6) and lb.shape == (3, 4)
    assert 200_000 < count_parameters(net) < 1_000_000
    assert 14.5e6 < count_parameters(SonoNetReference()) < 15.2e6  # SonoNet-64: 14.9 M


def test_predictor_probabilities_and_batch_independence(predictor):
    frames = [
        make_frame(p, seed=i).image for i, p in enumerate(["fetal_femur", "other", "fetal_abdomen"])
    ]
    frames.append(np.stack([frames[0]] * 3, -1))  # colour copy of the first
    batch = predictor.predict(frames)
    assert batch.plane_probs.shape == (4, 6) and batch.brain_probs.shape == (4, 4)
    assert batch.plane_probs.dtype == np.float32
    assert np.allclose(batch.plane_probs.sum(1), 1, atol=1e-5)
    assert np.allclose(batch.brain_probs.sum(1), 1, atol=1e-5)
    one = predictor.predict(frames[1:2])
    assert np.allclose(one.plane_probs[0], batch.plane_probs[1], atol=1e-5)
    assert np.allclose(batch.plane_probs[3], batch.plane_probs[0], atol=1e-5)
    labels = batch.labels()
    assert len(labels) == 4 and all(len(x) == 2 for x in labels)
    empty = predictor.predict_prepared(np.zeros((0, 160, 160), np.uint8))
    assert empty.plane_probs.shape == (0, 6)


def test_cine_prediction_shares_one_field_of_view(predictor):
    frames = np.stack([make_frame("fetal_brain", seed=s, sector_seed=7).image for s in range(5)])
    prepared = prepare_cine(frames)
    assert prepared.shape == (5, 160, 160) and prepared.dtype == np.uint8
    pred = predictor.predict_cine(frames)
    assert pred.plane_probs.shape == (5, 6)


def test_fov_crop_drops_text_around_a_screen_capture():
    f = make_frame("fetal_abdomen", seed=3)
    canvas = np.zeros((480, 640), np.uint8)
    canvas[100:356, 200:520] = f.image
    canvas[10:22, 20:300] = 220  # text line
    canvas[300:460, 600:604] = 200  # depth ruler
    r0, r1, c0, c1 = fov_bbox(canvas)
    rows, cols = np.nonzero(f.fov)
    assert abs(r0 - (100 + rows.min())) <= 3 and abs(r1 - (101 + rows.max())) <= 3
    assert abs(c0 - (200 + cols.min())) <= 3 and abs(c1 - (201 + cols.max())) <= 3
    assert prepare(canvas).shape == (160, 160)


def test_letterbox_keeps_aspect():
    out = letterbox(np.full((100, 200), 255, np.uint8), 160)
    assert out.shape == (160, 160)
    assert out[0].max() == 0 and out[80].min() == 255  # padded above, image in the middle


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"inference\.train planes"):
        Predictor(tmp_path / "nope.pt")


def test_default_weights_path_is_in_the_package():
    assert DEFAULT_WEIGHTS.name == "planes_classifier.pt"
    assert DEFAULT_WEIGHTS.parent.name == "weights"


def test_weights_carry_their_input_size(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "planes96.pt"
    save_weights(PlaneNet().eval(), path, {"width": 24, "version": "test-96"}, input_size=96)
    p = Predictor(path)
    assert p.input_size == 96 and p.meta["version"] == "test-96"
    frames = np.stack([make_frame("fetal_femur", seed=s, sector_seed=3).image for s in range(2)])
    assert p.predict_cine(frames).plane_probs.shape == (2, 6)
