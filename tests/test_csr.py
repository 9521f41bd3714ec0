"""The critical sample ratio: the Langevin adversarial sample search on models with known
boundaries."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from corruptlab.eval.csr import (
    ALPHA_255,
    BETA_255,
    R_255,
    critical_sample_ratio,
    critical_samples,
    langevin_adversarial_search,
    pixel_scale_to_input,
)

R = 0.3
MARGIN = 0.03


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: intra-op threads only add synchronisation (slow on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TwoClassLinear(nn.Module):
    """Logits [0, w.x + b]: class 1 where w.x + b > 0. Its L-infinity distance to the boundary
    is |w.x + b| / ||w||_1."""

    def __init__(self, w: list[float], b: float):
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(b)

    def forward(self, x):
        z = self.lin(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)

    def distance(self, x):
        with torch.no_grad():
            return self.lin(x).squeeze(1).abs() / self.lin.weight.abs().sum()


def mlp(seed: int = 0, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(12, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


def linear_points(n: int = 200, seed: int = 0):
    """A 2-d linear model and points whose distance to its boundary is not within MARGIN of R."""
    model = TwoClassLinear([1.0, -2.0], 0.3)
    x = torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    d = model.distance(x)
    keep = (d - R).abs() > MARGIN
    return model, x[keep], d[keep]


def search(model, x, seed=0, r=R, alpha=0.1, beta=0.02, steps=20):
    gen = torch.Generator().manual_seed(seed)
    return langevin_adversarial_search(
        model, x, r=r, alpha=alpha, beta=beta, steps=steps, generator=gen
    )


def test_pixel_scale_to_input():
    assert pixel_scale_to_input(0.3, 0.3081) == pytest.approx(0.3 / 255 / 0.3081)
    assert pixel_scale_to_input(255, 1.0) == pytest.approx(1.0)
    assert (ALPHA_255, BETA_255, R_255) == (0.25, 0.2, 0.3)
    with pytest.raises(ValueError):
        pixel_scale_to_input(0.3, 0.0)


def test_search_stays_in_the_ball():
    model = mlp()
    x = torch.randn(64, 3, 4, generator=torch.Generator().manual_seed(1))
    for r, alpha, beta in [(0.05, 0.03, 0.5), (0.5, 0.2, 0.3), (0.0, 0.1, 0.1)]:
        res = search(model, x, r=r, alpha=alpha, beta=beta, steps=15)
        assert res.x_adv.shape == x.shape
        assert (res.x_adv - x).abs().amax() <= r + 1e-6
        with torch.no_grad():
            assert torch.equal(model(x).argmax(1), res.pred)
            assert torch.equal(model(res.x_adv).argmax(1), res.pred_adv)
        assert torch.equal(res.found, res.pred_adv != res.pred)
        assert torch.equal(res.found, res.steps > 0)
        assert ((res.steps == -1) | ((res.steps >= 1) & (res.steps <= 15))).all()
    assert not search(model, x, r=0.0).found.any()
    assert search(model, x, r=0.5, alpha=0.2, steps=15).found.any()


def test_known_boundary_crossed_exactly_when_closer_than_r():
    model, x, d = linear_points()
    near = d < R
    assert 10 < int(near.sum()) < len(x) - 10
    res = search(model, x)
    assert torch.equal(res.found, near)
    assert (res.x_adv - x).abs().amax() <= R + 1e-6
    # the nearest points cross at the first step, those near r need r / alpha steps
    assert (res.steps[d < 0.1 - MARGIN] == 1).all()
    assert (res.steps[near] <= 4).all()


def test_critical_sample_ratio_equals_the_known_fraction():
    model, x, d = linear_points(300, seed=3)
    expected = float((d < R).float().mean())
    for batch_size in (7, 1000):
        csr = critical_sample_ratio(
            model, x, r=R, alpha=0.1, beta=0.02, steps=20, seed=0, batch_size=batch_size
        )
        assert csr == pytest.approx(expected)
    found = critical_samples(model, x, r=R, alpha=0.1, beta=0.02, steps=20, seed=0, batch_size=7)
    assert found.dtype == torch.bool and torch.equal(found, d < R)
    # a ball of half the radius: only points within r / 2 are critical
    half = critical_sample_ratio(model, x, r=R / 2, alpha=0.05, beta=0.01, steps=20, seed=0)
    assert half == pytest.approx(float((d < R / 2).float().mean()), abs=1.5 / len(x))
    assert math.isnan(critical_sample_ratio(model, x[:0], R, 0.1, 0.02, 5, seed=0))


def test_deterministic_for_a_seed():
    model = mlp(2)
    x = torch.randn(40, 3, 4, generator=torch.Generator().manual_seed(4))
    a = search(model, x, seed=5, r=0.4, alpha=0.1, beta=0.3)
    b = search(model, x, seed=5, r=0.4, alpha=0.1, beta=0.3)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    c = search(model, x, seed=6, r=0.4, alpha=0.1, beta=0.3)
    assert not torch.equal(a.x_adv, c.x_adv)  # the noise comes from the generator
    kw = dict(r=0.4, alpha=0.1, beta=0.3, steps=10, seed=5, batch_size=16)
    assert critical_sample_ratio(model, x, **kw) == critical_sample_ratio(model, x, **kw)


def test_model_left_as_it_was():
    model = mlp(3, bn=True)
    model.train()
    model[2].eval()  # a submodule in its own mode must keep it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(32, 3, 4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():  # also works inside no_grad
        csr = critical_sample_ratio(model, x, r=0.5, alpha=0.2, beta=0.1, steps=10, seed=0)
    assert 0.0 < csr <= 1.0
    search(model, x, r=0.5, alpha=0.2, beta=0.1)
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k  # weights and batch-norm running statistics
    for p in model.parameters():
        assert p.grad is None and p.requires_grad
    assert model.training and model[1].training and not model[2].training
    frozen = mlp(4)
    frozen[1].weight.requires_grad_(False)
    search(frozen, x[:4], r=0.1)
    assert not frozen[1].weight.requires_grad and frozen[1].bias.requires_grad


def test_bad_arguments():
    model, x, _ = linear_points(10)
    with pytest.raises(ValueError, match="radius"):
        search(model, x, r=-1.0)
    with pytest.raises(ValueError, match="steps"):
        search(model, x, steps=-1)
    with pytest.raises(ValueError, match="floating"):
        search(model, x.to(torch.int64))
    with pytest.raises(ValueError, match="batch_size"):
        critical_sample_ratio(model, x, R, 0.1, 0.0, 5, seed=0, batch_size=0)
