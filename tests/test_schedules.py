"""Learning-rate schedules: the lr of every epoch equals torch.optim.lr_scheduler's, both
trainers follow it, and a run killed mid-way resumes on schedule."""

from __future__ import annotations

import pytest
import torch
from test_training import KillAfter, Killed, cfg, same_state, tiny_model, toy_data, without_seconds

from corruptlab.core.registry import UnknownNameError
from corruptlab.train import packing, training
from corruptlab.train.packing import train_packed
from corruptlab.train.schedules import SCHEDULES, lr_at
from corruptlab.train.training import train


def torch_lrs(make_scheduler, lr: float, epochs: int) -> list[float]:
    """The lr of epochs 1..epochs with a torch scheduler stepped after every epoch, as the
    PyTorch MNIST example does."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("lr", [1.0, 0.1, 0.003])
@pytest.mark.parametrize("gamma", [0.7, 0.5, 0.95, 1.0])
def test_step_equals_steplr(lr, gamma):
    epochs = 14
    spec = {"name": "adadelta", "lr": lr, "schedule": {"name": "step", "gamma": gamma}}
    ours = [lr_at(spec, e, epochs) for e in range(1, epochs + 1)]
    steplr = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=gamma), lr, epochs)
    assert ours == steplr  # the same floats, not just close
    assert ours[0] == lr and ours[1] == lr * gamma


@pytest.mark.parametrize("at", [1, 3, 20])
def test_drop_equals_multisteplr(at):
    epochs, lr = 30, 1e-3
    spec = {"name": "adam", "lr": lr, "schedule": {"name": "drop", "at": at}}
    ours = [lr_at(spec, e, epochs) for e in range(1, epochs + 1)]
    multistep = torch_lrs(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[at], gamma=0.1), lr, epochs
    )
    assert ours == pytest.approx(multistep, rel=1e-12, abs=0)
    assert ours[at - 1] == lr and ours[at] == pytest.approx(1e-4)


def test_step_defaults_to_the_mnist_example_gamma():
    spec = {"name": "adadelta", "lr": 1.0, "schedule": {"name": "step"}}
    assert [lr_at(spec, e, 3) for e in (1, 2, 3)] == [1.0, 0.7, 0.7 * 0.7]


@pytest.mark.parametrize("lr", [1.0, 0.05])
@pytest.mark.parametrize("epochs", [1, 2, 5, 20, 37])
def test_cosine_equals_cosineannealinglr(lr, epochs):
    spec = {"name": "sgd", "lr": lr, "schedule": {"name": "cosine"}}
    ours = [lr_at(spec, e, epochs) for e in range(1, epochs + 1)]
    cosine = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs), lr, epochs
    )
    assert ours == cosine
    assert ours[0] == lr and all(a > b > 0 for a, b in zip(ours, ours[1:], strict=False))


def test_constant_is_the_default_and_unknown_names_are_refused():
    for spec in (
        {"name": "adam", "lr": 0.01},
        {"name": "adam", "lr": 0.01, "schedule": {"name": "constant"}},
    ):
        assert [lr_at(spec, e, 4) for e in (1, 2, 3, 4)] == [0.01] * 4
    with pytest.raises(UnknownNameError, match="accepted: constant, step, cosine, drop"):
        lr_at({"name": "adam", "lr": 0.01, "schedule": {"name": "linear"}}, 1, 4)
    with pytest.raises(ValueError, match="epoch 0 outside 1..4"):
        lr_at({"name": "adam", "lr": 0.01}, 0, 4)
    assert SCHEDULES.names() == ["constant", "step", "cosine", "drop"]


STEP = {"name": "sgd", "lr": 0.2, "momentum": 0.9, "schedule": {"name": "step", "gamma": 0.5}}


def lrs_seen(monkeypatch, module, name):
    """Record the optimizer's lr at the start of every epoch of ``module.<name>``."""
    seen = []
    real = getattr(module, name)

    def spy(*args):
        optimizer = args[1].optimizer if module is packing else args[1]
        seen.append(optimizer.param_groups[0]["lr"])
        return real(*args)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_both_trainers_train_each_epoch_at_its_lr(monkeypatch):
    c = cfg(optimizer=STEP, max_epochs=4, patience=10)
    expected = [lr_at(STEP, e, 4) for e in range(1, 5)]
    seen = lrs_seen(monkeypatch, training, "_train_epoch")
    train(tiny_model(), toy_data(), c)
    assert seen == expected == [0.2, 0.1, 0.05, 0.025]
    seen = lrs_seen(monkeypatch, packing, "_packed_epoch")
    train_packed(
        [tiny_model(s) for s in (1, 2)],
        [toy_data()] * 2,
        [cfg(**{**c.__dict__, "seed": s}) for s in (1, 2)],
    )
    assert seen == expected


def test_a_schedule_changes_training_from_its_second_epoch():
    plain = {k: v for k, v in STEP.items() if k != "schedule"}
    constant = train(tiny_model(), toy_data(), cfg(max_epochs=3, optimizer=plain))
    explicit = {**plain, "schedule": {"name": "constant"}}
    same = train(tiny_model(), toy_data(), cfg(max_epochs=3, optimizer=explicit))
    step = train(tiny_model(), toy_data(), cfg(max_epochs=3, optimizer=STEP))
    a, b = without_seconds(constant.history), without_seconds(step.history)
    assert a[:2] == b[:2]  # the initial weights and epoch 1, at the same lr
    assert a[2] != b[2]
    assert without_seconds(same.history) == a and same_state(same.best_state, constant.best_state)


def test_resume_with_a_step_schedule_equals_an_uninterrupted_run(tmp_path):
    data = toy_data(alpha_noise=1)
    c = cfg(optimizer=STEP, max_epochs=5, patience=10)
    full = train(tiny_model(), data, c)

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Killed):  # killed in the middle of epoch 3
        train(tiny_model(), data, c, checkpoint=ckpt, progress=KillAfter(2.5 * 512))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    resumed = train(tiny_model(seed=99), data, c, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert without_seconds(resumed.history) == without_seconds(full.history)
    assert resumed.best_epoch == full.best_epoch
    assert same_state(resumed.best_state, full.best_state)


def test_a_killed_pack_with_a_step_schedule_resumes_on_schedule(tmp_path, monkeypatch):
    data = toy_data(n=160)
    cfgs = [cfg(seed=s, optimizer=STEP, max_epochs=5, patience=10) for s in (3, 4)]
    full = train_packed([tiny_model(s) for s in (3, 4)], [data] * 2, cfgs)
    ckpt = tmp_path / "pack.pt"
    calls = {"n": 0}
    real_epoch = packing._packed_epoch

    def dies_in_epoch_3(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(packing, "_packed_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_packed([tiny_model(s) for s in (3, 4)], [data] * 2, cfgs, checkpoint=ckpt)
    monkeypatch.setattr(packing, "_packed_epoch", real_epoch)
    resumed = train_packed([tiny_model(s) for s in (3, 4)], [data] * 2, cfgs, checkpoint=ckpt)
    for r, f in zip(resumed, full, strict=True):
        assert r.resumed_from_epoch == 2
        assert without_seconds(r.history) == without_seconds(f.history)
        assert same_state(r.best_state, f.best_state)
