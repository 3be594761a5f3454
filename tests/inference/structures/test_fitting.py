"""The shared training loop: cosine schedule, checkpoints, resume, time limit, weights file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from inference.structures.fitting import fit, save_weights
from inference.structures.model import StructureUNet, build_model


def _setup(starts: list[int]):
    torch.manual_seed(0)
    model = StructureUNet(1, (4, 8))

    def batches_from(start: int):
        starts.append(start)
        rng = np.random.default_rng(start)
        while True:
            x = rng.normal(size=(2, 1, 16, 16)).astype(np.float32)
            yield x, (x > 0).astype(np.float32), None

    def loss_fn(logits, y, valid):
        assert valid is None
        return F.binary_cross_entropy_with_logits(logits, y)

    return model, batches_from, loss_fn


def test_a_resumed_run_continues_from_its_checkpoint(tmp_path: Path) -> None:
    starts: list[int] = []
    model, batches_from, loss_fn = _setup(starts)
    common = {"batches_from": batches_from, "loss_fn": loss_fn, "lr": 1e-2, "device": "cpu"}
    first = fit(model, steps=50, checkpoint_dir=tmp_path, checkpoint_every=25, **common)
    assert first.step == 50 and [h["step"] for h in first.history] == [25, 50]
    assert first.history[-1]["lr"] == pytest.approx(1e-2 * 0.5 * (1 + np.cos(np.pi * 49 / 50)))
    # a longer schedule picks up at step 50 from last.pt and keeps the history
    again, _, _ = _setup(starts)
    second = fit(again, steps=75, checkpoint_dir=tmp_path, resume=True, **common)
    assert starts == [0, 50]
    assert second.step == 75 and [h["step"] for h in second.history] == [25, 50, 75]
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 75
    log = [json.loads(line) for line in (tmp_path / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == [25, 50, 75]


def test_the_time_limit_stops_after_a_step_and_checkpoints_it(tmp_path: Path) -> None:
    model, batches_from, loss_fn = _setup([])
    result = fit(
        model,
        batches_from=batches_from,
        loss_fn=loss_fn,
        steps=1000,
        lr=1e-2,
        device="cpu",
        checkpoint_dir=tmp_path,
        time_limit_min=0.0,
    )
    assert result.step == 1
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 1
    assert "time limit" in (tmp_path / "train.log").read_text()


def test_weights_are_float16_with_config_meta_and_extras(tmp_path: Path) -> None:
    model, _, _ = _setup([])
    out = tmp_path / "w" / "net.pt"
    save_weights(model, out, {"steps": 3}, tmp_path, net_shape=[16, 16])
    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["meta"] == {"steps": 3} and blob["net_shape"] == [16, 16]
    assert all(
        v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point()
    )
    again = build_model(blob["config"])
    again.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_training_asked_for_a_gpu_it_does_not_have_says_so() -> None:
    from inference.structures.train_femur_refine import main

    with pytest.raises(SystemExit, match="no CUDA device on this machine"):
        main(["--device", "cuda", "--steps", "1"])
    with pytest.raises(SystemExit, match="--device gpu: not a device name"):
        main(["--device", "gpu", "--steps", "1"])
