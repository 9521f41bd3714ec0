"""Supermasks over frozen weights (Zhou et al. 2019, Ramanujan et al. 2020) and TicketFinder,
the edge-popup update as a torch optimizer: weights never change, masks do, and the loss falls."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from corruptlab.train.models import build_model
from corruptlab.train.supermask import (
    MaskedLayer,
    effective_state,
    mask_density,
    supermask,
    topk_mask,
)
from corruptlab.train.ticket_finder import TicketFinder

SHAPE = (1, 8, 8)


def blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 8x8 images around three fixed random means (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(3, *SHAPE, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return means[y] + 0.8 * torch.randn(n, *SHAPE, generator=g), y


def masked_mlp(
    kind: str,
    k: float = 0.5,
    weights: str = "signed_constant",
    seed: int = 0,
    scale_fan: bool | None = None,
):
    torch.manual_seed(0)
    base = build_model("mlp_300_100", SHAPE, 3)
    generator = torch.Generator().manual_seed(seed)
    return base, supermask(
        base, kind, k=k, weights=weights, scale_fan=scale_fan, generator=generator
    )


def sgd_steps(model: nn.Module, steps: int, lr: float = 0.1) -> list[float]:
    x, y = blobs()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    torch.manual_seed(1)
    losses = []
    model.train()
    for i in range(steps):
        sl = slice(32 * (i % 8), 32 * (i % 8 + 1))
        loss = F.cross_entropy(model(x[sl]), y[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["edge_popup", "bernoulli"])
def test_training_changes_scores_and_never_weights(kind):
    _, model = masked_mlp(kind)
    assert [n.rsplit(".", 1)[1] for n, _ in model.named_parameters()] == ["score"] * 3
    frozen = {n: b.clone() for n, b in model.named_buffers()}
    scores = {n: p.detach().clone() for n, p in model.named_parameters()}
    sgd_steps(model, 5)
    for n, b in model.named_buffers():
        assert torch.equal(b, frozen[n]), n  # bit-identical weights (and zero biases)
    for n, p in model.named_parameters():
        assert not torch.equal(p, scores[n]), n
        assert p.grad is not None


@pytest.mark.parametrize("kind", ["edge_popup", "bernoulli"])
def test_the_scores_gradient_is_the_straight_through_estimate(kind):
    """d loss / d score = (d loss / d w_eff) * w0 * d mask / d score, with the mask's own
    derivative replaced by that of |score| (edge-popup) or of sigmoid(score) (bernoulli)."""
    layer = nn.Linear(6, 4)
    masked = supermask(
        nn.Sequential(layer), kind, k=0.5, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        masked[0].score.normal_(generator=torch.Generator().manual_seed(1))
    x, y = torch.randn(5, 6), torch.randint(0, 4, (5,))
    torch.manual_seed(2)
    F.cross_entropy(masked(x), y).backward()
    torch.manual_seed(2)  # the same Bernoulli draw
    w0, s = masked[0].weight, masked[0].score.detach()
    if kind == "edge_popup":
        mask, slope = masked[0].eval_mask(), s.sign()
    else:
        p = torch.sigmoid(s)
        mask, slope = torch.bernoulli(p), p * (1 - p)
    w_eff = (w0 * mask).requires_grad_(True)
    F.cross_entropy(F.linear(x, w_eff, masked[0].bias), y).backward()
    torch.testing.assert_close(masked[0].score.grad, w_eff.grad * w0 * slope, rtol=1e-6, atol=1e-7)
    assert 0 < mask.mean().item() < 1


def test_frozen_weight_inits():
    _, model = masked_mlp("edge_popup", weights="signed_constant", scale_fan=False)
    for _, layer in model.named_modules():
        if isinstance(layer, MaskedLayer):
            std = math.sqrt(2.0 / layer.weight.shape[1])
            assert set(layer.weight.abs().unique().tolist()) == pytest.approx([std])
            assert 0.4 < (layer.weight > 0).double().mean().item() < 0.6
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    _, normal = masked_mlp("edge_popup", weights="kaiming_normal", scale_fan=False)
    w = normal[1].weight
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / 64), rel=0.05)
    _, again = masked_mlp("edge_popup", weights="kaiming_normal", scale_fan=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(normal.state_dict().values(), again.state_dict().values(), strict=True)
    )
    _, other = masked_mlp("edge_popup", weights="kaiming_normal", seed=1, scale_fan=False)
    assert not torch.equal(other[1].weight, w)


# fan_in of each layer: a Linear's inputs, a Conv2d's in_channels x kernel area
SCALED_LAYERS = [nn.Linear(784, 300), nn.Linear(64, 300), nn.Conv2d(8, 64, 3)]


@pytest.mark.parametrize("k", [0.3, 0.5, 0.7])
def test_edge_popup_weights_have_the_scaled_std(k):
    """Ramanujan et al.'s scale_fan: the frozen weights' std is sqrt(2 / (k * fan_in)), for
    every kept fraction k and fan_in, both inits; the default for edge-popup; the same draws
    (signs) as unscaled, each weight 1 / sqrt(k) times its unscaled value."""

    def frozen(layer, weights, scale_fan):
        g = torch.Generator().manual_seed(7)
        net = nn.Sequential(layer)
        return supermask(net, "edge_popup", k=k, weights=weights, scale_fan=scale_fan,
                         generator=g)[0].weight  # fmt: skip

    for layer in SCALED_LAYERS:
        fan = math.prod(layer.weight.shape[1:])
        std = math.sqrt(2.0 / (k * fan))
        for weights in ("kaiming_normal", "signed_constant"):
            w = frozen(layer, weights, None)  # edge-popup's default
            assert torch.equal(w, frozen(layer, weights, True))
            assert w.double().std().item() == pytest.approx(std, rel=0.04), (weights, fan)
            if weights == "signed_constant":
                assert w.abs().unique().tolist() == pytest.approx([std], rel=1e-6)
            unscaled = frozen(layer, weights, False)
            assert unscaled.double().std().item() == pytest.approx(std * math.sqrt(k), rel=0.04)
            torch.testing.assert_close(w, unscaled / math.sqrt(k), rtol=1e-6, atol=0)


def test_bernoulli_weights_are_unscaled_and_refuse_scale_fan():
    _, model = masked_mlp("bernoulli")
    assert model[1].weight.abs().unique().tolist() == pytest.approx([math.sqrt(2.0 / 64)])
    with pytest.raises(ValueError, match="scale_fan .* mask kind 'bernoulli' has none"):
        masked_mlp("bernoulli", scale_fan=True)


def argsort_mask(scores: torch.Tensor, k: float) -> torch.Tensor:
    """The selection topk_mask replaced: a stable ascending argsort, its first
    ``int((1 - k) * numel)`` entries dropped."""
    flat = scores.flatten()
    drop = int((1.0 - k) * flat.numel())
    mask = torch.ones_like(flat)
    mask[flat.argsort(stable=True)[:drop]] = 0.0
    return mask.view_as(scores)


def test_topk_mask_is_the_argsort_selection_bit_for_bit():
    """On random scores (no ties), on scores with many ties and with NaNs, for many k and
    shapes: the same mask as the stable argsort (whose tie order is the defined one)."""
    g = torch.Generator().manual_seed(0)
    shapes = [(1,), (7,), (30, 11), (4, 3, 3, 3), (300, 784)]
    ks = [1e-3, 0.1, 0.3, 1 / 3, 0.5, 0.7, 0.999, 1.0]
    for shape in shapes:
        for k in ks:
            scores = torch.randn(shape, generator=g).abs()
            assert torch.equal(topk_mask(scores, k), argsort_mask(scores, k)), (shape, k)
            ties = torch.randint(0, 4, shape, generator=g).float()
            assert torch.equal(topk_mask(ties, k), argsort_mask(ties, k)), (shape, k)
            ties[torch.rand(shape, generator=g) < 0.3] = math.nan
            assert torch.equal(topk_mask(ties, k), argsort_mask(ties, k)), (shape, k)
    scores = torch.rand(300, 784, generator=g)
    mask = topk_mask(scores, 0.5)
    assert mask.dtype == scores.dtype and mask.sum().item() == 300 * 784 // 2


def test_topk_mask_selects_without_sorting(monkeypatch):
    """The mask is found in linear time (issue 25: a full argsort of a 300x784 score tensor on
    every forward pass made edge-popup look 5x costlier than it is): no sort is called."""

    def refuse(*args, **kwargs):
        raise AssertionError("topk_mask sorted its scores")

    for name in ("argsort", "sort", "msort"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
        monkeypatch.setattr(torch, name, refuse)
    scores = torch.rand(300, 784, generator=torch.Generator().manual_seed(0))
    assert topk_mask(scores, 0.3).sum().item() == 300 * 784 - int(0.7 * 300 * 784)


def test_topk_mask_ties_keep_the_later_positions():
    """Equal scores at the threshold: the later ones (by flat position) are kept; NaN counts as
    the largest score."""
    assert topk_mask(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.5).tolist() == [0, 0, 1, 1]
    # keep 5 - int(0.6 * 5) = 2 of 0, 2, 2, 1, 2: the last two of the three 2s
    assert topk_mask(torch.tensor([0.0, 2.0, 2.0, 1.0, 2.0]), 0.4).tolist() == [0, 0, 1, 0, 1]
    nan = math.nan
    assert topk_mask(torch.tensor([nan, 1.0, nan, 0.0]), 0.5).tolist() == [1, 0, 1, 0]
    assert topk_mask(torch.tensor([nan, 1.0, nan, 0.0]), 0.25).tolist() == [0, 0, 1, 0]
    assert topk_mask(torch.tensor([[3.0, 3.0], [3.0, 3.0]]), 1.0).tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize("k", [0.3, 0.5, 0.7])
def test_edge_popup_density_is_k_in_every_layer_before_and_after_training(k):
    _, model = masked_mlp("edge_popup", k=k)
    sizes = {"1": 64 * 300, "3": 300 * 100, "5": 100 * 3}
    expected = {n: (s - int((1 - k) * s)) / s for n, s in sizes.items()}
    assert mask_density(model) == expected
    sgd_steps(model, 3)
    assert mask_density(model) == expected


def test_bernoulli_density_is_the_expected_keep_fraction():
    _, model = masked_mlp("bernoulli")
    assert mask_density(model) == {"1": 0.5, "3": 0.5, "5": 0.5}  # scores start at 0
    sgd_steps(model, 3)
    density = mask_density(model)
    for name, layer in model.named_modules():
        if isinstance(layer, MaskedLayer):
            assert density[name] == torch.sigmoid(layer.score).double().mean().item()


def test_bernoulli_samples_in_training_and_uses_the_expected_mask_in_eval():
    _, model = masked_mlp("bernoulli")
    x, _ = blobs(8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    out = model(x)
    assert torch.equal(out, model(x))
    # scores start at 0: the eval mask is sigmoid(0) = 0.5, i.e. the weights halved
    half = build_model("mlp_300_100", SHAPE, 3)
    with torch.no_grad():
        for name, p in half.named_parameters():
            frozen = model.get_buffer(name)
            p.copy_(frozen * 0.5 if name.endswith("weight") else frozen)
    assert torch.equal(half(x), out)


@pytest.mark.parametrize("kind", ["edge_popup", "bernoulli"])
def test_effective_state_is_the_same_function_as_a_plain_model(kind):
    base, model = masked_mlp(kind)
    sgd_steps(model, 4)
    model.eval()
    plain = build_model("mlp_300_100", SHAPE, 3)
    plain.load_state_dict(effective_state(model))
    x, _ = blobs(16)
    assert torch.equal(plain(x), model(x))
    if kind == "edge_popup":
        for name, layer in model.named_modules():
            if isinstance(layer, MaskedLayer):
                w = plain.state_dict()[f"{name}.weight"]
                kept = w != 0
                assert torch.equal(w[kept], layer.weight[kept])


def test_conv_layers_are_masked_too():
    torch.manual_seed(0)
    base = build_model("conv4", (1, 16, 16), 3)
    model = supermask(base, "edge_popup", k=0.3, generator=torch.Generator().manual_seed(0))
    assert sum(isinstance(m, MaskedLayer) for m in model.modules()) == 6
    x = torch.randn(4, 1, 16, 16)
    loss = model(x).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    plain = build_model("conv4", (1, 16, 16), 3)
    plain.load_state_dict(effective_state(model))
    torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-6)


# --- TicketFinder -------------------------------------------------------------------------


def notebook_loop(model, optimizer, epochs: int, closure: bool = False) -> list[float]:
    """The notebook's train_ticket loop (log-softmax + nll_loss), on the blobs; mean loss per
    epoch."""
    x, y = blobs()
    means = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for i in range(0, len(x), 32):
            data, target = x[i : i + 32], y[i : i + 32]
            if closure:

                def step(data=data, target=target):
                    optimizer.zero_grad()
                    loss = F.nll_loss(F.log_softmax(model(data), 1), target)
                    loss.backward()
                    return loss

                loss = optimizer.step(step)
            else:
                optimizer.zero_grad()
                output = F.log_softmax(model(data), dim=1)
                loss = F.nll_loss(output, target)
                loss.backward()
                optimizer.step()
            total += loss.item()
        means.append(total / (len(x) // 32))
    return means


@pytest.mark.parametrize("closure", [False, True])
def test_ticket_finder_in_the_notebooks_loop(closure):
    torch.manual_seed(0)
    model = build_model("mlp_300_100", SHAPE, 3)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = TicketFinder(model.parameters(), lr=1.0, k=0.5)
    losses = notebook_loop(model, optimizer, 4, closure)
    assert losses[-1] < 0.7 * losses[0]
    saved = [optimizer.state[p]["w0"] for p in model.parameters()]
    for w0, w in zip(saved, initial, strict=True):
        assert torch.equal(w0, w)  # the original weights, bit-identical
    for p, w0, mask in zip(model.parameters(), saved, optimizer.masks(), strict=True):
        assert torch.equal(p.detach(), w0 * mask)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    sizes = [p.numel() for p in model.parameters()]
    assert optimizer.density() == [(n - int(0.5 * n)) / n for n in sizes]


def test_ticket_finder_is_the_edge_popup_update():
    """On a bias-free MLP, TicketFinder and an edge-popup supermask trained by SGD (momentum
    0.9) from the same frozen weights and scores end with bit-identical scores."""
    torch.manual_seed(0)
    base = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 3, bias=False)
    )
    masked = supermask(base, "edge_popup", k=0.4, generator=torch.Generator().manual_seed(3))
    plain = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 3, bias=False)
    )
    plain.load_state_dict({k: v for k, v in masked.state_dict().items() if k.endswith("weight")})
    finder = TicketFinder(plain.parameters(), lr=0.05, k=0.4, momentum=0.9)
    with torch.no_grad():
        for p, layer in zip(plain.parameters(), (masked[1], masked[3]), strict=True):
            finder.state[p]["score"].copy_(layer.score)
            p.copy_(layer.weight * layer.eval_mask())
    sgd = torch.optim.SGD(masked.parameters(), lr=0.05, momentum=0.9)
    x, y = blobs(128)
    for i in range(0, 128, 32):
        for model, opt in ((masked, sgd), (plain, finder)):
            opt.zero_grad()
            F.cross_entropy(model(x[i : i + 32]), y[i : i + 32]).backward()
            opt.step()
    for p, layer in zip(plain.parameters(), (masked[1], masked[3]), strict=True):
        assert torch.equal(finder.state[p]["score"], layer.score.detach())
        assert torch.equal(p.detach(), layer.weight * layer.eval_mask())


def test_ticket_finder_state_dict_resumes_bit_identically():
    def run(split: bool):
        torch.manual_seed(0)
        model = build_model("mlp_300_100", SHAPE, 3)
        opt = TicketFinder(model.parameters(), lr=0.1, k=0.3, seed=5)
        notebook_loop(model, opt, 1)
        if split:  # a fresh process: a new model and optimizer from the saved states
            state, opt_state = model.state_dict(), opt.state_dict()
            torch.manual_seed(1)
            model = build_model("mlp_300_100", SHAPE, 3)
            opt = TicketFinder(model.parameters(), lr=0.1, k=0.3, seed=5)
            opt.load_state_dict(opt_state)
            assert all(
                torch.equal(a, b)
                for a, b in zip(model.state_dict().values(), state.values(), strict=True)
            )
        notebook_loop(model, opt, 1)
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(run(False), run(True), strict=True):
        assert torch.equal(a, b)


def test_ticket_finder_group_k_and_errors():
    model = build_model("mlp_300_100", SHAPE, 3)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = TicketFinder([{"params": weights}, {"params": biases, "k": 1.0}], k=0.7)
    assert opt.density()[3:] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="fraction k"):
        TicketFinder(model.parameters(), k=0.0)
    with pytest.raises(ValueError, match="lr"):
        TicketFinder(model.parameters(), lr=-1)
