"""The optimizer registry: updates bit-identical to torch.optim's classes, parameters without a
gradient left alone, exact resume through a saved state dict, and no torch._dynamo import."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from corruptlab.core.registry import UnknownNameError
from corruptlab.train.optim import OPTIMIZERS, build_optimizer

STEPS = 20

# (registry spec, the torch.optim optimizer it must match)
SETTINGS = {
    "adadelta": (
        {"name": "adadelta", "lr": 1.0, "weight_decay": 0.0},
        lambda ps: torch.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0),
    ),
    "adadelta-wd": (
        {"name": "adadelta", "lr": 0.5, "weight_decay": 1e-2},
        lambda ps: torch.optim.Adadelta(ps, lr=0.5, rho=0.9, eps=1e-6, weight_decay=1e-2),
    ),
    "sgd": (
        {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.0, weight_decay=0.0),
    ),
    "sgd-wd": (
        {"name": "sgd", "lr": 0.1, "weight_decay": 5e-3},  # momentum takes its default, 0
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.0, weight_decay=5e-3),
    ),
    "sgd-m": (
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0},
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.0),
    ),
    "sgd-m-wd": (
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-3),
    ),
    "adam": (
        {"name": "adam", "lr": 1e-2},  # weight decay takes its default, 0
        lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    ),
    "adam-wd": (
        {"name": "adam", "lr": 1e-2, "weight_decay": 1e-2},
        lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    ),
}
# one setting per optimizer with all of its state in use
STATEFUL = ["adadelta-wd", "sgd-m-wd", "adam-wd"]


class Net(nn.Module):
    """A trunk and two heads; ``head_b`` is used on every third step only, ``unused`` never, so
    some parameters have no gradient at some (or all) steps."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(6, 8)
        self.head_a = nn.Linear(8, 3)
        self.head_b = nn.Linear(8, 3)
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        h = torch.tanh(self.trunk(x))
        out = self.head_a(h)
        return out + self.head_b(h) if step % 3 == 0 else out


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def net() -> Net:
    torch.manual_seed(1)
    return Net()


BATCHES = [
    (torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g))
    for g in [torch.Generator().manual_seed(2)]
    for _ in range(4)
]


def train_step(model: nn.Module, optimizer, step: int, set_to_none: bool = True) -> None:
    x, y = BATCHES[step % len(BATCHES)]
    out = model(x, step) if isinstance(model, Net) else model(x)
    optimizer.zero_grad(set_to_none=set_to_none)
    F.cross_entropy(out, y).backward()
    optimizer.step()


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def assert_identical(a: list[torch.Tensor], b: list[torch.Tensor], where: str) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert torch.equal(x, y), f"{where}: parameter {i} differs (max {(x - y).abs().max()})"


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_steps_are_bit_identical_to_torch_optim(setting):
    spec, torch_optimizer = SETTINGS[setting]
    ref = mlp()
    ours = copy.deepcopy(ref)
    ref_opt = torch_optimizer(ref.parameters())
    our_opt = build_optimizer(ours.parameters(), spec)
    assert weights(ref) != [] and all(map(torch.equal, weights(ref), weights(ours)))
    for step in range(STEPS):
        set_to_none = step % 4 != 1  # also zero the gradients in place now and then
        train_step(ref, ref_opt, step, set_to_none)
        train_step(ours, our_opt, step, set_to_none)
        assert_identical(weights(ours), weights(ref), f"{setting}, step {step + 1}")
    assert not torch.equal(weights(ours)[0], weights(mlp())[0])  # it did learn something


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_parameters_without_gradient_are_skipped(setting):
    spec, torch_optimizer = SETTINGS[setting]
    ref = net()
    ours = copy.deepcopy(ref)
    unused_before = weights(ours.unused)
    ref_opt = torch_optimizer(ref.parameters())
    our_opt = build_optimizer(ours.parameters(), spec)
    for step in range(STEPS):
        train_step(ref, ref_opt, step)
        train_step(ours, our_opt, step)
        # head_b skips most steps, even with weight decay or momentum: as torch.optim does
        assert_identical(weights(ours), weights(ref), f"{setting}, step {step + 1}")
    assert_identical(weights(ours.unused), unused_before, f"{setting}, unused layer")
    assert all(p.grad is None for p in ours.unused.parameters())


def run_uninterrupted(spec: dict) -> list[list[torch.Tensor]]:
    model = net()
    opt = build_optimizer(model.parameters(), spec)
    out = []
    for step in range(STEPS):
        train_step(model, opt, step)
        out.append(weights(model))
    return out


@pytest.mark.parametrize("split", [0, 1, 7, 10])
@pytest.mark.parametrize("setting", STATEFUL + ["sgd"])
def test_state_dict_round_trip_resumes_bit_identically(setting, split, tmp_path):
    spec, _ = SETTINGS[setting]
    expected = run_uninterrupted(spec)

    model = net()
    opt = build_optimizer(model.parameters(), spec)
    for step in range(split):
        train_step(model, opt, step)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    # an in-memory copy too: it must not share state with the original
    twin = copy.deepcopy(model)
    twin_opt = build_optimizer(twin.parameters(), spec)
    twin_opt.load_state_dict(opt.state_dict())

    state = torch.load(path, weights_only=True)
    resumed = net()  # same architecture, weights from the checkpoint
    resumed.load_state_dict(state["model"])
    resumed_opt = build_optimizer(resumed.parameters(), spec)
    resumed_opt.load_state_dict(state["optimizer"])
    for step in range(split, STEPS):
        runs = [
            ("original", model, opt),
            ("copy", twin, twin_opt),
            ("resumed", resumed, resumed_opt),
        ]
        for name, m, o in runs:
            train_step(m, o, step)
            assert_identical(weights(m), expected[step], f"{setting}, {name}, step {step + 1}")


@pytest.mark.parametrize("setting", STATEFUL)
def test_loads_a_torch_optim_state_dict(setting, tmp_path):
    """Checkpoints written while the registry built torch.optim optimizers still resume."""
    spec, torch_optimizer = SETTINGS[setting]
    ref = net()
    ref_opt = torch_optimizer(ref.parameters())
    for step in range(8):
        train_step(ref, ref_opt, step)
    torch.save({"model": ref.state_dict(), "optimizer": ref_opt.state_dict()}, tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)

    ours = net()
    ours.load_state_dict(state["model"])
    our_opt = build_optimizer(ours.parameters(), spec)
    our_opt.load_state_dict(state["optimizer"])
    for step in range(8, STEPS):
        train_step(ref, ref_opt, step)
        train_step(ours, our_opt, step)
        assert_identical(weights(ours), weights(ref), f"{setting}, step {step + 1}")


def test_state_dict_of_another_optimizer_is_refused():
    model = mlp()
    adam = build_optimizer(model.parameters(), {"name": "adam", "lr": 1e-3})
    train_step(model, adam, 0)
    sgd = build_optimizer(model.parameters(), {"name": "sgd", "lr": 0.1, "momentum": 0.9})
    with pytest.raises(ValueError, match="adam"):
        sgd.load_state_dict(adam.state_dict())
    fewer = build_optimizer(list(model.parameters())[:2], {"name": "adam", "lr": 1e-3})
    with pytest.raises(ValueError, match="parameters"):
        fewer.load_state_dict(adam.state_dict())


def test_unknown_optimizer_raises_the_registry_error():
    with pytest.raises(UnknownNameError, match="accepted: adadelta, sgd, adam"):
        build_optimizer(mlp().parameters(), {"name": "rmsprop", "lr": 0.1})
    assert set(OPTIMIZERS.names()) == {"adadelta", "sgd", "adam"}


def test_building_and_stepping_does_not_import_dynamo():
    code = (
        "import sys\n"
        "import corruptlab.train.optim as o\n"
        "assert 'torch' not in sys.modules, 'corruptlab.train.optim imported torch'\n"
        "import torch\n"
        "assert 'torch._dynamo' not in sys.modules, 'import torch imported torch._dynamo'\n"
        "for spec in [{'name': 'adadelta', 'lr': 1.0, 'weight_decay': 1e-4},\n"
        "             {'name': 'sgd', 'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4},\n"
        "             {'name': 'adam', 'lr': 1e-3, 'weight_decay': 1e-4}]:\n"
        "    model = torch.nn.Linear(3, 2)\n"
        "    opt = o.build_optimizer(model.parameters(), spec)\n"
        "    opt.zero_grad(set_to_none=True)\n"
        "    model(torch.randn(4, 3)).sum().backward()\n"
        "    opt.step()\n"
        "    opt.load_state_dict(opt.state_dict())\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize("setting", STATEFUL)
def test_builds_subclasses_of_the_torch_optim_classes(setting):
    spec, torch_optimizer = SETTINGS[setting]
    ours = build_optimizer(mlp().parameters(), spec)
    ref = torch_optimizer(mlp().parameters())
    assert isinstance(ours, type(ref)) and type(ours).__name__ == type(ref).__name__
    # the same hyper-parameters as the torch.optim class with corruptlab's settings
    assert ours.param_groups[0].keys() == ref.param_groups[0].keys()
    for key, value in ref.param_groups[0].items():
        if key != "params":
            assert ours.param_groups[0][key] == value, key
