"""Gradient-free methods (population evaluation under vmap, each method improving a tiny problem,
determinism) and ``methods.fit``, the loop of every no-gradient-descent method (history columns,
budget, exact resume)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from corruptlab.train import gradient_free as gf
from corruptlab.train.method_loop import MethodConfig, build_runner, fit, fit_method
from corruptlab.train.methods import METHODS
from corruptlab.train.models import build_model
from corruptlab.train.supermask import masked_layers
from corruptlab.train.training import TrainData, seeded_model

SHAPE = (1, 8, 8)
GRADIENT_FREE = ["random_search", "one_plus_one_es", "simulated_annealing", "genetic", "openai_es"]


def blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 8x8 images around three fixed random means."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(123))
    y = torch.randint(0, 3, (n,), generator=g)
    return means[y] + 0.8 * torch.randn(n, *SHAPE, generator=g), y


def data() -> TrainData:
    x, y = blobs(256)
    vx, vy = blobs(128, seed=1)
    return TrainData(x, torch.arange(len(x)), y, vx, vy)


def model(name: str = "perceptron", seed: int = 0):
    return seeded_model(lambda: build_model(name, SHAPE, 3), seed)


LOOP_METHODS = ["edge_popup", "bernoulli_supermask", "ticket_finder", *GRADIENT_FREE]


def test_registered_methods():
    """One registry: gradient descent and the loop's methods, each loop method with a runner
    builder and the loop's fit function."""
    assert METHODS.names() == ["gd", *LOOP_METHODS]
    assert [n for n in METHODS if METHODS.get(n).gradient_free] == GRADIENT_FREE
    assert [n for n in METHODS if METHODS.get(n).build is not None] == LOOP_METHODS
    assert [n for n in METHODS if METHODS.get(n).frozen_weights] == LOOP_METHODS[:3]
    assert {METHODS.get(n).resolve() for n in LOOP_METHODS} == {fit_method}
    with pytest.raises(ValueError, match="'gd' is not one of the loop's; accepted: edge_popup"):
        build_runner(model(), {"name": "gd"}, 0)


@pytest.mark.parametrize(("name", "shape"), [("mlp1", SHAPE), ("net_notebook", (1, 12, 12))])
def test_population_forward_equals_a_loop_over_members(name, shape):
    torch.manual_seed(0)
    m = build_model(name, shape, 3).eval()
    pop = gf.Population(m, chunk=2)  # 5 members in vmap calls of 2, 2 and 1
    theta = gf.flatten(m) + 0.05 * torch.randn(
        5, pop.dim, generator=torch.Generator().manual_seed(1)
    )
    x = torch.randn(7, *shape)
    y = torch.randint(0, 3, (7,))
    logits = pop.logits(theta, x)
    losses = pop.losses(theta, x, y)
    assert logits.shape == (5, 7, 3) and losses.shape == (5,)
    for i in range(5):
        with torch.no_grad():
            one = functional_call(m, pop.state(theta[i]), (x,))
        torch.testing.assert_close(logits[i], one, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(losses[i], F.cross_entropy(one, y), rtol=1e-5, atol=1e-6)


def test_flatten_and_state_round_trip():
    m = model("mlp1")
    pop = gf.Population(m)
    state = pop.state(gf.flatten(m))
    assert state.keys() == m.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


def test_centered_ranks():
    r = gf.centered_ranks(torch.tensor([3.0, -1.0, 10.0, 0.0, 0.5]))
    assert r.tolist() == [0.25, -0.5, 0.5, -0.25, 0.0]


def run_generations(name: str, generations: int, seed: int = 0, **params):
    """A gradient-free method on the blobs for ``generations`` minibatches of 64; returns the
    full-set loss before and after and the final solution."""
    runner = build_runner(model(), {"name": name, **params}, seed)
    x, y = blobs(256)
    pop = runner.population
    before = pop.losses(runner.method.solution()[None], x, y).item()
    spent = 0
    g = torch.Generator().manual_seed(seed)
    for _ in range(generations):
        sel = torch.randint(0, 256, (64,), generator=g)
        _, count = runner.method.step(x[sel], y[sel])
        spent += count
    after = pop.losses(runner.method.solution()[None], x, y).item()
    return before, after, runner.method.solution().clone(), spent


GENERATIONS = {
    "random_search": ({"population": 8}, 10, 9 * 64),
    "one_plus_one_es": ({"sigma": 0.05}, 60, 2 * 64),
    "simulated_annealing": ({"sigma": 0.05, "t0": 0.01}, 60, 2 * 64),
    "genetic": ({"population": 16, "sigma": 0.05}, 15, 16 * 64),
    "openai_es": ({"pairs": 8, "lr": 0.05}, 20, 17 * 64),
}


@pytest.mark.parametrize("name", GRADIENT_FREE)
def test_each_method_improves_a_tiny_problem(name):
    params, generations, per_generation = GENERATIONS[name]
    before, after, _, spent = run_generations(name, generations, **params)
    assert after < 0.8 * before, (before, after)
    assert spent == generations * per_generation  # examples forwarded: members x batch


@pytest.mark.parametrize("name", GRADIENT_FREE)
def test_each_method_is_deterministic_given_its_seed(name):
    params, generations, _ = GENERATIONS[name]
    generations = min(generations, 8)
    _, a_loss, a, _ = run_generations(name, generations, seed=3, **params)
    _, b_loss, b, _ = run_generations(name, generations, seed=3, **params)
    _, _, c, _ = run_generations(name, generations, seed=4, **params)
    assert torch.equal(a, b) and a_loss == b_loss
    assert not torch.equal(a, c)


def test_one_plus_one_es_follows_the_one_fifth_rule():
    runner = build_runner(model(), {"name": "one_plus_one_es", "sigma": 0.1}, 0)
    es = runner.method
    x, y = blobs(64)
    successes = 0
    for _ in range(20):
        parent = es.parent
        es.step(x, y)
        successes += not torch.equal(es.parent, parent)
    assert es.sigma == pytest.approx(0.1 * math.exp(successes / 3 - (20 - successes) / 12))


class Quadratic:
    """A population evaluator of the loss (theta_0 + 3)^2 + (theta_1 - 2)^2 (no data)."""

    dim = 2

    def losses(self, members, x, y):
        return (members[:, 0] + 3) ** 2 + (members[:, 1] - 2) ** 2


def test_openai_es_update_is_the_reference_by_hand():
    """One OpenAI-ES generation on a 2-parameter quadratic, 2 antithetic pairs with fixed noise,
    against es-distributed's update computed by hand: g = sum of the pairs' centered-rank
    differences times their noise / (2 pairs), Adam on -g + l2 * theta (no 1 / sigma)."""
    center = torch.tensor([1.0, 0.5], dtype=torch.float64)
    es = gf.OpenAIES(Quadratic(), center, 0, pairs=2, sigma=0.1, lr=0.01, weight_decay=0.5)
    es.noise = lambda rows: torch.eye(2, dtype=torch.float64)  # eps_1 = e_1, eps_2 = e_2
    loss, count = es.step(torch.zeros(3, 1), torch.zeros(3))
    assert loss.item() == pytest.approx(16 + 2.25) and count == 5 * 3  # the center, 5 members
    # members +eps_1 (1.1, 0.5), +eps_2 (1.0, 0.6), -eps_1 (0.9, 0.5), -eps_2 (1.0, 0.4): losses
    # 19.06, 17.96, 17.46, 18.56; fitness -loss ranks 0, 2, 3, 1 of 0..3, centered (r / 3 - 0.5):
    # -1/2, 1/6, 1/2, -1/6; pair differences -1, 1/3; g = (-1 * e_1 + 1/3 * e_2) / 4
    g = [-1 / 4, 1 / 12]
    grad = [-g[i] + 0.5 * center[i].item() for i in range(2)]  # [0.75, 1/6]
    # Adam, t = 1: m = 0.1 grad, v = 0.001 grad^2, a = lr sqrt(1 - 0.999) / (1 - 0.9)
    a = 0.01 * math.sqrt(1 - 0.999) / (1 - 0.9)
    expected = [
        center[i].item() - a * (0.1 * grad[i]) / (math.sqrt(0.001 * grad[i] ** 2) + 1e-8)
        for i in range(2)
    ]
    assert es.center.tolist() == pytest.approx(expected, rel=1e-12)
    # the L2 term outweighs theta_1's estimate and moves it down (against the fitness); with
    # the estimate divided by sigma it would not (-10/12 + 0.25 < 0): the update tells them apart
    assert es.center[1].item() < 0.5
    assert es.m.tolist() == pytest.approx([0.1 * x for x in grad], rel=1e-12)


def test_no_gradient_is_ever_computed():
    runner = build_runner(model("mlp1"), {"name": "openai_es", "pairs": 2}, 0)
    x, y = blobs(32)
    with torch.enable_grad():
        loss, _ = runner.method.step(x, y)
    assert not loss.requires_grad and not runner.method.center.requires_grad


# --- fit ------------------------------------------------------------------------------------


class Killed(Exception):
    pass


class KillAtUpdate:
    """A progress bar that kills the run at its ``n``-th update (the end of epoch n, before
    that epoch's checkpoint is written)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def update(self, _count) -> None:
        self.n -= 1
        if self.n == 0:
            raise Killed

    def set_postfix(self, **_kw) -> None:
        pass


def comparable(history: list[dict]) -> list[dict]:
    return [
        {
            k: "nan" if isinstance(v, float) and math.isnan(v) else v
            for k, v in row.items()
            if k not in ("seconds", "seconds_total")
        }
        for row in history
    ]


RESUMED = {
    "openai_es": {"name": "openai_es", "pairs": 4, "lr": 0.05},
    "edge_popup": {"name": "edge_popup", "k": 0.5, "lr": 0.5},
    "bernoulli_supermask": {"name": "bernoulli_supermask"},
    "ticket_finder": {"name": "ticket_finder"},
    "genetic": {"name": "genetic", "population": 8, "sigma": 0.05},
    "simulated_annealing": {"name": "simulated_annealing"},
}


@pytest.mark.parametrize("name", list(RESUMED))
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, name):
    cfg = MethodConfig(RESUMED[name], batch_size=64, max_epochs=4, patience=10, seed=5)
    d = data()
    full = fit(model("mlp1"), d, cfg, checkpoint=tmp_path / "a.pt")
    ckpt = tmp_path / "b.pt"
    with pytest.raises(Killed):
        fit(model("mlp1"), d, cfg, checkpoint=ckpt, progress=KillAtUpdate(3))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    resumed = fit(model("mlp1"), d, cfg, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert comparable(resumed.history) == comparable(full.history)
    assert resumed.best_state.keys() == full.best_state.keys()
    assert all(torch.equal(resumed.best_state[k], v) for k, v in full.best_state.items())


@pytest.mark.parametrize("name", LOOP_METHODS)
def test_fit_records_examples_and_returns_a_state_of_the_model(name):
    cfg = MethodConfig({"name": name}, batch_size=64, max_epochs=2, patience=5, seed=1)
    m = model("mlp1")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    result = fit(m, data(), cfg)
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    per_batch = {"random_search": 17, "genetic": 32, "openai_es": 33}.get(name, 1)
    if name in ("one_plus_one_es", "simulated_annealing"):
        per_batch = 2
    assert [row["examples_forwarded"] for row in result.history] == [
        0,
        256 * per_batch,
        256 * per_batch,
    ]
    assert result.history[-1]["examples_total"] == 512 * per_batch
    assert all(math.isfinite(row["val_accuracy"]) for row in result.history)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # m unchanged
    m.load_state_dict(result.best_state)  # a plain state of the model given
    if not METHODS.get(name).gradient_free:
        assert 0.3 < result.history[-1]["mask_density"] <= 0.7


def test_edge_popup_learns_and_its_solution_is_the_masked_init():
    cfg = MethodConfig(
        {"name": "edge_popup", "k": 0.5, "lr": 0.5}, batch_size=32, max_epochs=3, seed=0
    )
    result = fit(model("mlp1"), data(), cfg)
    assert result.history[-1]["val_accuracy"] > 0.8 > result.history[0]["val_accuracy"]
    w = result.best_state["1.weight"]
    assert (w != 0).double().mean().item() == pytest.approx(0.5, abs=1e-3)
    # edge-popup's default scale_fan: std sqrt(2 / (k * fan_in))
    assert set(w[w != 0].abs().unique().tolist()) == pytest.approx([math.sqrt(2 / (0.5 * 64))])


def test_a_budget_of_examples_stops_the_run():
    cfg = MethodConfig(
        {"name": "genetic", "population": 8}, batch_size=64, max_epochs=10, seed=0,
        max_examples=3000,
    )  # fmt: skip
    result = fit(model(), data(), cfg)
    assert result.stopped_by == "budget"
    # 8 members x 64 examples per generation; the run stops at the first total >= 3000
    assert result.history[-1]["examples_total"] == 6 * 512
    assert [row["examples_forwarded"] for row in result.history] == [0, 4 * 512, 2 * 512]


# every method's run-path slug with its defaults: only edge-popup's changed with scale_fan
DEFAULT_SLUGS = {
    "gd": "gd",
    "edge_popup": "edge_popup-k0.5-wsigned_constant-sf1-lr0.1-m0.9-wd0",
    "bernoulli_supermask": "bernoulli_supermask-wsigned_constant-lr100-m0.9-wd0",
    "ticket_finder": "ticket_finder-k0.5-lr1-m0.9-wd0",
    "random_search": "random_search-p16-c0",
    "one_plus_one_es": "one_plus_one_es-s0.01",
    "simulated_annealing": "simulated_annealing-s0.01-t0.05-cool0.995",
    "genetic": "genetic-p32-tr0.25-s0.01-e1-c0",
    "openai_es": "openai_es-n16-s0.02-lr0.01-wd0.005-c0",
}


def test_edge_popup_scales_its_frozen_weights_by_default_and_names_it():
    """scale_fan is an edge-popup parameter (in its run path, so a run with other weights is
    another run), true by default; the other methods' paths and frozen weights are as before."""
    for name, slug in DEFAULT_SLUGS.items():
        method = METHODS.get(name)
        assert method.slug(method.values({"name": name})) == slug
    cases = [
        ({"name": "edge_popup"}, 0.5),
        ({"name": "edge_popup", "k": 0.3}, 0.3),
        ({"name": "edge_popup", "k": 0.3, "scale_fan": False}, 1.0),
        ({"name": "bernoulli_supermask"}, 1.0),
    ]
    for spec, kept in cases:
        runner = build_runner(model("mlp1"), spec, 0)
        for _, layer in masked_layers(runner.model):
            std = math.sqrt(2 / (kept * layer.weight.shape[1]))
            assert layer.weight.abs().unique().tolist() == pytest.approx([std]), spec
    with pytest.raises(ValueError, match="scale_fan: got 'yes'; accepted: true or false"):
        build_runner(model(), {"name": "edge_popup", "scale_fan": "yes"}, 0)


def test_a_method_refuses_unknown_or_bad_parameters():
    with pytest.raises(ValueError, match="unknown parameter.*momentum"):
        build_runner(model(), {"name": "genetic", "momentum": 0.9}, 0)
    with pytest.raises(ValueError, match="k: got 1.5"):
        build_runner(model(), {"name": "edge_popup", "k": 1.5}, 0)
    with pytest.raises(ValueError, match="max_examples: got 0"):
        MethodConfig({"name": "genetic"}, max_examples=0)


def test_a_budget_of_seconds_spent_before_an_epoch_stops_the_run_there(tmp_path):
    cfg = MethodConfig({"name": "one_plus_one_es"}, batch_size=64, max_seconds=1e-9)
    result = fit(model(), data(), cfg, checkpoint=tmp_path / "c.pt")
    assert result.stopped_by == "budget" and result.status == "ok"
    assert [row["epoch"] for row in result.history] == [0]
    assert torch.load(tmp_path / "c.pt", weights_only=True)["stopped_by"] == "budget"


def test_on_epoch_measures_the_current_solution():
    def probe(epoch: int, solution) -> dict:
        return {"probe_epoch": epoch, "zeros": (solution[1].weight == 0).double().mean().item()}

    cfg = MethodConfig({"name": "edge_popup", "k": 0.3}, batch_size=64, max_epochs=2, seed=0)
    result = fit(model("mlp1"), data(), cfg, on_epoch=probe)
    assert [row["probe_epoch"] for row in result.history] == [0, 1, 2]
    for row in result.history:
        assert row["zeros"] == int(0.7 * 64 * 256) / (64 * 256)  # edge-popup drops 1 - k
