"""The trainer: learning, early stopping, determinism, exact resume, divergence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from corruptlab.data.datasets import normalize
from corruptlab.train import training
from corruptlab.train.training import (
    TrainConfig,
    TrainData,
    predict,
    seeded_model,
    train,
)


def toy_data(n: int = 256, seed: int = 0, alpha_noise: int = 0) -> TrainData:
    """Two linearly separable classes in 4-d, shaped [N, 1, 2, 2] like tiny images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    x[:, 0] += torch.where(y == 1, 1.0, -1.0)  # a margin
    images = x.view(n, 1, 2, 2)
    idx = torch.arange(n)
    labels = y.clone()
    if alpha_noise:
        idx = torch.cat([idx, idx.repeat(alpha_noise)])
        labels = torch.cat([labels, torch.randint(0, 2, (n * alpha_noise,), generator=g)])
    vx = torch.randn(128, 4, generator=g)
    vy = (vx[:, 0] + 0.5 * vx[:, 1] > 0).long()
    vx[:, 0] += torch.where(vy == 1, 1.0, -1.0)
    return TrainData(images, idx, labels, vx.view(-1, 1, 2, 2), vy)


def tiny_model(seed: int = 0, dropout: bool = False) -> nn.Module:
    def build() -> nn.Module:
        layers = [nn.Flatten(), nn.Linear(4, 16), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.3))
        return nn.Sequential(*layers, nn.Linear(16, 2))

    return seeded_model(build, seed)


def cfg(**kw) -> TrainConfig:
    base = dict(
        optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9},
        batch_size=32,
        max_epochs=6,
        patience=10,
        seed=7,
    )
    base.update(kw)
    return TrainConfig(**base)


def without_seconds(history: list[dict]) -> list[dict]:
    """History rows without timings; NaN (epoch 0 has no training loss) made comparable."""
    nan = "nan"
    return [
        {
            k: nan if isinstance(v, float) and math.isnan(v) else v
            for k, v in row.items()
            if k != "seconds"
        }
        for row in history
    ]


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learns_a_separable_task():
    data = toy_data()
    result = train(tiny_model(), data, cfg())
    assert result.status == "ok"
    assert result.history[0]["epoch"] == 0  # the untrained model's validation row
    assert len(result.history) == 7
    assert result.best_val_accuracy >= 0.95
    assert result.history[-1]["train_loss"] < 0.2


def test_learns_through_uniform_label_noise():
    """Rolnick's effect in miniature: 4 random labels per clean one still point the right way."""
    result = train(tiny_model(), toy_data(alpha_noise=4), cfg(max_epochs=8))
    assert result.best_val_accuracy >= 0.9


def test_same_run_twice_is_identical_on_cpu():
    a = train(tiny_model(dropout=True), toy_data(), cfg())
    b = train(tiny_model(dropout=True), toy_data(), cfg())
    assert without_seconds(a.history) == without_seconds(b.history)
    assert same_state(a.best_state, b.best_state)
    c = train(tiny_model(dropout=True), toy_data(), cfg(seed=8))
    assert without_seconds(c.history) != without_seconds(a.history)


def test_early_stopping_keeps_the_best_epoch(monkeypatch):
    scripted = iter([0.1, 0.5, 0.8, 0.7, 0.75, 0.9, 0.95])  # epochs 0..6
    snapshots = []

    def fake_validate(model, data):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return 1.0, next(scripted)

    monkeypatch.setattr(training, "_validate", fake_validate)
    result = train(tiny_model(), toy_data(), cfg(patience=2, max_epochs=6))
    assert result.stopped_by == "patience"
    assert result.best_epoch == 2
    assert result.best_val_accuracy == 0.8
    assert [r["epoch"] for r in result.history] == [0, 1, 2, 3, 4]  # stopped 2 epochs later
    assert same_state(result.best_state, snapshots[2])
    assert not same_state(result.best_state, snapshots[4])


class Killed(Exception):
    pass


class KillAfter:
    """A progress bar that 'kills' the job after ``n`` training examples."""

    def __init__(self, n: int) -> None:
        self.left = n

    def update(self, k: int) -> None:
        self.left -= k
        if self.left <= 0:
            raise Killed

    def set_postfix(self, **kw) -> None:
        pass


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    data = toy_data(alpha_noise=1)
    c = cfg(max_epochs=5)
    full = train(tiny_model(dropout=True), data, c, checkpoint=tmp_path / "a.pt")

    ckpt = tmp_path / "b.pt"
    with pytest.raises(Killed):  # killed in the middle of epoch 3
        train(tiny_model(dropout=True), data, c, checkpoint=ckpt, progress=KillAfter(2.5 * 512))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    resumed = train(tiny_model(seed=99, dropout=True), data, c, checkpoint=ckpt)

    assert resumed.resumed_from_epoch == 2
    assert without_seconds(resumed.history) == without_seconds(full.history)
    assert resumed.best_epoch == full.best_epoch
    assert same_state(resumed.best_state, full.best_state)


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    ckpt = tmp_path / "c.pt"
    train(tiny_model(), toy_data(), cfg(max_epochs=2), checkpoint=ckpt)
    result = train(tiny_model(), toy_data(), cfg(max_epochs=3, seed=1), checkpoint=ckpt)
    assert result.resumed_from_epoch == 0
    assert len(result.history) == 4


def test_nonfinite_loss_ends_the_run_as_diverged():
    data = toy_data()
    data.images[5, 0, 0, 0] = math.nan
    result = train(tiny_model(), data, cfg())
    assert result.status == "diverged"
    assert result.stopped_by == "nonfinite_loss"
    assert result.best_epoch == 0
    assert len(result.history) == 2
    assert math.isnan(result.history[-1]["train_loss"])
    assert all(torch.isfinite(v).all() for v in result.best_state.values())


def test_normalize_and_predict_shapes():
    u8 = torch.full((3, 28, 28), 255, dtype=torch.uint8)
    x = normalize(u8, mean=0.5, std=0.25)
    assert x.shape == (3, 1, 28, 28) and torch.allclose(x, torch.full_like(x, 2.0))
    model = tiny_model()
    logits = predict(model, torch.randn(2500, 1, 2, 2))
    assert logits.shape == (2500, 2) and model.training


def test_a_checkpoint_of_the_former_format_is_ignored(tmp_path):
    """A checkpoint written before the optimizers were torch.optim subclasses (format 1: the
    key of the configuration alone, FunctionalOptimizer's optimizer state) is not resumed:
    the run trains afresh, to the result of a run without a checkpoint."""
    import hashlib
    import json

    c = cfg(max_epochs=3)
    old_key = hashlib.sha256(json.dumps(c.__dict__, sort_keys=True, default=str).encode())
    model = tiny_model()
    old = {
        "key": old_key.hexdigest()[:16],
        "epoch": 2,
        "model": model.state_dict(),
        "optimizer": {
            "optimizer": "sgd",
            "hyperparameters": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0},
            "state": [{"momentum_buffer": torch.zeros_like(p)} for p in model.parameters()],
        },
        "best_state": model.state_dict(),
        "best_epoch": 0,
        "best_val_accuracy": 0.5,
        "bad_epochs": 2,
        "history": [],
        "stopped_by": None,
    }
    ckpt = tmp_path / "old.pt"
    torch.save(old, ckpt)
    result = train(tiny_model(), toy_data(), c, checkpoint=ckpt)
    fresh = train(tiny_model(), toy_data(), c)
    assert result.resumed_from_epoch == 0
    assert without_seconds(result.history) == without_seconds(fresh.history)
    assert same_state(result.best_state, fresh.best_state)
    assert torch.load(ckpt, weights_only=True)["key"] != old["key"]  # overwritten
