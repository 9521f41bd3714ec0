"""Supermasks: training a mask over weights frozen at a random initialisation.

``supermask(model, kind, k=..., weights=..., generator=...)`` returns a copy of ``model`` whose
``nn.Linear`` and ``nn.Conv2d`` layers are ``MaskedLayer``s: the layer's weight is a buffer
drawn afresh from ``generator`` and never changes, its bias a buffer of zeros, and its only
trainable tensor is ``score``, one real number per weight. The layer computes with
``weight * mask(score)``; gradients reach the scores through a straight-through estimator and
never the weights. Every other parameter of the model (e.g. a batch norm's scale and shift)
becomes a buffer too, frozen at its initial value. Such a model trains with the ordinary
trainer (``training.train``, any registered optimizer): its parameters are the scores.

Two kinds of mask (``MASK_KINDS``):

- ``bernoulli`` (Zhou et al. 2019, "Deconstructing Lottery Tickets: Zeros, Signs, and the
  Supermask"): in training each forward samples ``mask ~ Bernoulli(sigmoid(score))`` from
  torch's global generator (which the trainers reseed per epoch, as for dropout, so the model is
  ``stochastic``); the backward pass treats the sample as ``sigmoid(score)`` (straight-through
  over the sampling only). Scores start at 0 (keep probability 0.5). In eval mode the layer
  uses the expected mask ``sigmoid(score)``: deterministic, so validation, early stopping and
  resumed runs do not depend on a draw (our choice; with a sampled mask they would depend
  on the draw).
- ``edge_popup`` (Ramanujan et al. 2020, "What's Hidden in a Randomly Weighted Neural
  Network?"): the mask keeps the fraction ``k`` of each layer's weights with the largest
  ``|score|`` (the paper's code ranks ``scores.abs()`` and keeps ``numel - int((1 - k) *
  numel)`` of them), in training and eval alike; the backward pass is the identity through
  the top-k selection (so ``d loss / d score = sign(score) * w0 * d loss / d w``). Scores
  start uniform in ``+-1/sqrt(fan_in)`` (the paper's ``kaiming_uniform_(a=sqrt(5))``).

Weights (``WEIGHT_INITS``): ``kaiming_normal``, normal with ``std = sqrt(2 / fan_in)``;
``signed_constant``, ``+-std`` of that with a random sign (Ramanujan et al.'s "signed Kaiming
constant"; Zhou et al.'s signed constant is a layer's initial std with each weight's sign,
and their initial std need not be ours). These stds are unscaled. With ``scale_fan``
(edge-popup only, and its default) the std is
``sqrt(2 / (k * fan_in))``: a layer keeping the fraction ``k`` of its weights sums ``k *
fan_in`` inputs per unit, and the larger std gives its outputs the variance of an unmasked
Kaiming layer (Ramanujan et al.'s code, flag ``scale_fan``; unscaled, each masked layer's
output shrinks by about ``sqrt(k)``). The scaling changes no draw: one generator gives the
same signs either way. Biases are zero and frozen (Ramanujan et al.'s networks have none;
ours, for Zhou et al.'s).

``mask_density(model)`` gives each masked layer's fraction of weights in use at evaluation
(edge-popup: exactly the kept fraction; bernoulli: the expected fraction, mean
``sigmoid(score)``). ``effective_state(model)`` gives the state dict of the unmasked model
computing the same function in eval mode (weights ``w0 * mask``), which loads into the model
``supermask`` was given.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

MASK_KINDS = ("bernoulli", "edge_popup")
WEIGHT_INITS = ("kaiming_normal", "signed_constant")


def fan_in(shape: torch.Size | tuple[int, ...]) -> int:
    """Inputs per output unit of a weight of ``shape`` ([out, in, *kernel]); a 1-D tensor
    (a bias) counts as its own length."""
    return math.prod(shape[1:]) if len(shape) > 1 else shape[0]


def draw_weight(
    shape: tuple[int, ...], init: str, generator: torch.Generator, kept: float = 1.0
) -> torch.Tensor:
    """A frozen weight of ``shape`` under ``init`` (see ``WEIGHT_INITS``), on the CPU, with std
    ``sqrt(2 / (kept * fan_in))``: ``kept`` is the fraction of the weights a mask keeps (1.0:
    the plain Kaiming std; ``k`` for Ramanujan et al.'s ``scale_fan``)."""
    if init not in WEIGHT_INITS:
        raise ValueError(f"weight init {init!r}; accepted: {', '.join(WEIGHT_INITS)}")
    if not 0.0 < kept <= 1.0:
        raise ValueError(f"weight init {init!r}: kept fraction {kept}; accepted: (0, 1]")
    std = math.sqrt(2.0 / (kept * fan_in(shape)))
    w = torch.randn(shape, generator=generator)
    if init == "signed_constant":
        return torch.where(w >= 0, std, -std)
    return w * std


def topk_mask(scores: torch.Tensor, k: float) -> torch.Tensor:
    """1.0 for the ``numel - int((1 - k) * numel)`` largest ``scores``, 0.0 elsewhere; the shape
    and dtype of ``scores``.

    The mask is the one a stable ascending sort gives when its first ``int((1 - k) * numel)``
    entries are dropped (the paper's code, with ties made deterministic): of scores equal at
    the threshold the later ones (by flat position) are kept, and NaN counts as larger than
    every number. It is found in linear time: the threshold by ``torch.kthvalue``, the ties at
    it by position (a full argsort per forward pass cost 5-10x more)."""
    flat = scores.detach().flatten()
    n = flat.numel()
    drop = int((1.0 - k) * n)
    if drop == 0:
        return torch.ones_like(flat).view_as(scores)
    threshold = flat.kthvalue(drop).values  # the largest dropped score (NaN sorts last)
    nan, above_nan = flat.isnan(), threshold.isnan()
    # kept for sure: above a numeric threshold (NaN included); tied: equal to it (NaN to NaN)
    keep = ((flat > threshold) | nan) & ~above_nan
    tied = torch.where(above_nan, nan, flat == threshold)
    # of the tied scores the last ``extra`` by position are kept: counted from the end, without
    # reading a number back to the host (no device sync per forward pass)
    extra = (n - drop) - keep.sum()
    from_end = tied.flip(0).cumsum(0).flip(0)
    keep |= tied & (from_end <= extra)
    return keep.to(scores.dtype).view_as(scores)


class MaskedLayer(nn.Module):
    """A ``nn.Linear`` or ``nn.Conv2d`` over a frozen weight with a learned mask (see the module
    docstring): buffers ``weight`` and ``bias`` (zeros, or None), parameter ``score``."""

    def __init__(
        self,
        layer: nn.Module,
        kind: str,
        k: float,
        init: str,
        generator,
        scale_fan: bool = False,
    ) -> None:
        super().__init__()
        if kind not in MASK_KINDS:
            raise ValueError(f"mask kind {kind!r}; accepted: {', '.join(MASK_KINDS)}")
        if not 0.0 < k <= 1.0:
            raise ValueError(f"edge-popup keeps a fraction k in (0, 1] of the weights, got {k}")
        if scale_fan and kind != "edge_popup":
            raise ValueError(
                f"scale_fan scales the weights by edge-popup's kept fraction k; mask kind "
                f"{kind!r} has none (accepted: scale_fan with kind edge_popup only)"
            )
        if isinstance(layer, nn.Conv2d):
            if layer.padding_mode != "zeros":
                raise ValueError(f"conv padding_mode {layer.padding_mode!r}; accepted: zeros")
            self.conv = dict(
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=layer.groups,
            )
        elif isinstance(layer, nn.Linear):
            self.conv = None
        else:
            raise TypeError(f"cannot mask a {type(layer).__name__}; accepted: Linear, Conv2d")
        self.kind, self.k = kind, k
        old = layer.weight
        shape = tuple(old.shape)
        fmt = torch.channels_last if old.dim() == 4 and not old.is_contiguous() else None

        def place(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device=old.device, dtype=old.dtype)
            return t.contiguous(memory_format=fmt) if fmt is not None else t

        kept = k if scale_fan else 1.0
        self.register_buffer("weight", place(draw_weight(shape, init, generator, kept)))
        bias = None if layer.bias is None else torch.zeros_like(layer.bias.detach())
        self.register_buffer("bias", bias)
        if kind == "edge_popup":
            bound = 1.0 / math.sqrt(fan_in(shape))
            score = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        else:
            score = torch.zeros(shape)
        self.score = nn.Parameter(place(score))

    def mask(self) -> torch.Tensor:
        """The mask the forward pass uses, with the straight-through gradient to ``score``."""
        if self.kind == "edge_popup":
            a = self.score.abs()
            return topk_mask(a, self.k) + (a - a.detach())
        p = torch.sigmoid(self.score)
        if not self.training:
            return p
        return torch.bernoulli(p.detach()) + (p - p.detach())

    def eval_mask(self) -> torch.Tensor:
        """The mask in eval mode, without autograd."""
        with torch.no_grad():
            if self.kind == "edge_popup":
                return topk_mask(self.score.abs(), self.k)
            return torch.sigmoid(self.score)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.mask()
        if self.conv is None:
            return F.linear(x, w, self.bias)
        return F.conv2d(x, w, self.bias, **self.conv)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, k={self.k}, weight={tuple(self.weight.shape)}"


def supermask(
    model: nn.Module,
    kind: str = "edge_popup",
    *,
    k: float = 0.5,
    weights: str = "signed_constant",
    scale_fan: bool | None = None,
    generator: torch.Generator,
) -> nn.Module:
    """A copy of ``model`` with every Linear/Conv2d layer a ``MaskedLayer`` (in module order,
    each drawing its weight then its edge-popup scores from ``generator``) and every other
    parameter a buffer. ``k`` is edge-popup's kept fraction (ignored by ``bernoulli``);
    ``scale_fan`` draws edge-popup's weights with std ``sqrt(2 / (k * fan_in))`` (module
    docstring; None: for ``edge_popup``, not for ``bernoulli``)."""
    if scale_fan is None:
        scale_fan = kind == "edge_popup"
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear | nn.Conv2d):
                setattr(parent, name, MaskedLayer(child, kind, k, weights, generator, scale_fan))
    for module in model.modules():
        if isinstance(module, MaskedLayer):
            continue
        for name, p in list(module.named_parameters(recurse=False)):
            del module._parameters[name]
            module.register_buffer(name, p.detach())
    return model


def masked_layers(model: nn.Module) -> list[tuple[str, MaskedLayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, MaskedLayer)]


def mask_density(model: nn.Module) -> dict[str, float]:
    """Each masked layer's fraction of weights in use in eval mode (see the module docstring)."""
    return {n: m.eval_mask().double().mean().item() for n, m in masked_layers(model)}


def effective_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the unmasked model that computes what ``model`` computes in eval mode:
    each masked weight is ``w0 * mask``, the scores are dropped."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, layer in masked_layers(model):
        prefix = f"{name}." if name else ""
        del state[prefix + "score"]
        state[prefix + "weight"] = layer.weight * layer.eval_mask()
    return state
