"""Measurements of a network at initialisation (Bjorck et al. 2018, "Understanding Batch
Normalization", Figs. 2, 3 and 5), on a few training minibatches, in training mode (batch norm
normalises with the minibatch's statistics, as in the first steps of training):

- per layer and minibatch, the norm of the loss gradient of the layer's weight, and the tail of
  its entries: q99.9 / q50 of |gradient entries| (4.9 for Gaussian entries; larger means
  heavier tails, the paper's Fig. 2);
- per layer, the mean over output channels of each channel's |mean| and std (over the batch and
  the spatial positions) of the layer's output, averaged over the minibatches (Fig. 5);
- per step size eta, the loss on the same minibatch after a step of eta along the negative
  gradient, relative to the loss before: L(w - eta g) / L(w), averaged over the minibatches
  (Fig. 3; a non-finite loss counts as +inf).

The layers are the model's linear and conv layers in module order (a ResNet's 1x1 shortcut
convs, modules named ``shortcut``, are left out), numbered from 1 (``L01``); the last is the
classifier. The model given is not changed (a copy is measured: batch norm's running
statistics and the weights stay as they were), and nothing is random: the minibatches are given.

``init_probe`` returns the measurements as flat columns of a history row
(``probe.<quantity>.L<layer>[.b<batch>]``, ``probe.relative_loss.s<step>``); the batchnorm study
kind's tables turn them into long rows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PREFIX = "probe."
TAIL_QUANTILE = 0.999
GAUSSIAN_TAIL = 4.9  # q99.9 / q50 of |x| for Gaussian x (3.29 / 0.674)


def probed_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of the linear and conv layers measured, in module order (shortcut
    convs left out)."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d)) and not name.endswith("shortcut")
    ]


def step_slug(eta: float) -> str:
    """A step size as a column suffix (``0.001`` -> ``s0.001``)."""
    return f"{float(eta):g}"


def _channel_stats(out: torch.Tensor) -> tuple[float, float]:
    """Mean over channels of |channel mean| and channel std; channels on dim 1, statistics over
    the batch and any spatial dims."""
    x = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
    return x.mean(1).abs().mean().item(), x.std(1, unbiased=False).mean().item()


def _tail(grad: torch.Tensor) -> float:
    g = grad.detach().abs().double().flatten()
    median = torch.quantile(g, 0.5).item()
    if median == 0 or not math.isfinite(median):
        return math.nan
    return torch.quantile(g, TAIL_QUANTILE).item() / median


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x).double(), y)


def init_probe(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    step_sizes: Sequence[float],
) -> dict[str, float]:
    """The measurements (module docstring) of ``model`` on ``batches`` of (images, labels),
    as history columns."""
    if not batches:
        raise ValueError("init_probe needs at least one minibatch")
    probe = copy.deepcopy(model).train()
    layers = probed_layers(probe)
    n_layers = len(layers)
    acts: dict[int, list[tuple[float, float]]] = {i: [] for i in range(n_layers)}
    recording = [False]  # the loss's forward pass is measured, not the step-size probes'

    def hook(i: int):
        def record(_module, _inputs, out) -> None:
            if recording[0]:
                acts[i].append(_channel_stats(out))

        return record

    hooks = [m.register_forward_hook(hook(i)) for i, (_, m) in enumerate(layers)]
    row: dict[str, float] = {}
    tails: dict[int, list[float]] = {i: [] for i in range(n_layers)}
    rel: dict[str, list[float]] = {step_slug(e): [] for e in step_sizes}
    params = [p for p in probe.parameters() if p.requires_grad]
    for b, (x, y) in enumerate(batches):
        probe.zero_grad(set_to_none=True)
        recording[0] = True
        loss = _loss(probe, x, y)
        recording[0] = False
        loss.backward()
        for i, (_, m) in enumerate(layers):
            g = m.weight.grad
            row[f"{PREFIX}grad_norm.L{i + 1:02d}.b{b}"] = g.detach().double().norm().item()
            tails[i].append(_tail(g))
        # the loss after a step of eta along -g, on the same batch (weights restored after)
        saved = [p.detach().clone() for p in params]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in params]
        before = loss.item()
        with torch.no_grad():
            for eta in step_sizes:
                for p, w, g in zip(params, saved, grads, strict=True):
                    p.copy_(w - eta * g)
                after = _loss(probe, x, y).item()
                ratio = after / before if math.isfinite(after) else math.inf
                rel[step_slug(eta)].append(ratio)
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
    for h in hooks:
        h.remove()
    for i in range(n_layers):
        means, stds = zip(*acts[i], strict=True)
        row[f"{PREFIX}act_mean.L{i + 1:02d}"] = float(sum(means) / len(means))
        row[f"{PREFIX}act_std.L{i + 1:02d}"] = float(sum(stds) / len(stds))
        finite = [t for t in tails[i] if math.isfinite(t)]
        row[f"{PREFIX}grad_tail.L{i + 1:02d}"] = (
            float(sum(finite) / len(finite)) if finite else math.nan
        )
    for slug, values in rel.items():
        row[f"{PREFIX}relative_loss.s{slug}"] = float(sum(values) / len(values))
    return row
