"""Test-time adaptation methods (a registry): predictions of a trained model on shifted test data.

Each entry is ``fn(model, images, *, batch_size, lr, steps, seed) -> logits [N, C]``: ``model``
is a trained ``nn.Module``, ``images`` a normalised float tensor [N, C, H, W] on the model's
device, taken in consecutive batches of ``batch_size`` (the caller shuffles if it wants to).
The model's own weights, buffers and mode are never modified: every call works on a deep copy,
so each test condition starts again from the trained ("source") model.

- ``source``: no adaptation. Eval-mode predictions; batch norm uses the running statistics
  of the training data.
- ``norm``: test-time normalisation (Schneider et al. 2020, "Improving robustness against
  common corruptions by covariate shift adaptation", NeurIPS; TENT's "norm" baseline). Every
  batch-norm layer normalises with the mean and variance of the current test batch instead of
  its running statistics; nothing is learnt and no statistic carries over between batches.
  All other layers are in eval mode (no dropout).
- ``tent``: test entropy minimisation (Wang et al. 2021, "Tent: Fully Test-Time Adaptation by
  Entropy Minimization", ICLR). Batch norm normalises with test-batch statistics as in
  ``norm``, and the batch-norm affine parameters (scale and shift; every other parameter is
  frozen) are updated online to minimise the mean Shannon entropy of the predictions on each
  test batch, with Adam (betas 0.9, 0.999, no weight decay; TENT's CIFAR setting is lr 1e-3
  with batches of 128). Per batch, ``steps`` iterations of forward -> entropy -> backward ->
  step; the batch's predictions are the outputs of its last forward pass, computed before that
  pass's update (as in the reference implementation). The parameters carry over from batch
  to batch within one call.

``norm`` and ``tent`` need a model with batch norm (``conv4_bn``, ``mlp_bn``) and at least two
examples per batch: a trailing batch of a single example is folded into the batch before it.

The order of the test stream (a registry, ``STREAMS``; the ``stream`` parameter of ``norm`` and
``tent``) matters to every method that uses batch statistics: a batch of one or two classes has
statistics unlike the training data's. ``shuffled`` (the default) is a seeded random order, an
i.i.d. stream as in TENT's evaluation; ``class_ordered`` sorts the test set by label, a
non-i.i.d. stream that is a known failure of test-time normalisation, kept to study it. The
caller (corruptlab.eval.evaluation) orders the images by ``stream_order`` and puts the outputs
back in the test set's order; ``source`` is order-free and takes no stream.

Importable without torch (methods import it inside), so the Snakefile can check method names.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from corruptlab.core.params import Param
from corruptlab.core.registry import Registry
from corruptlab.train.models import models_where
from corruptlab.train.optim import build_optimizer

if TYPE_CHECKING:
    import torch
    from torch import nn

Method = Callable[..., "torch.Tensor"]
METHODS: Registry[Method] = Registry("adaptation method")


LR = Param(
    "lr", "lr", float, 0.0, None, default=1e-3, doc="adaptation learning rate", low_open=True
)
BATCH_SIZE = Param(
    "batch_size", "bs", int, 2, None, default=128, doc="test batch size the method adapts on"
)
STEPS = Param("steps", "steps", int, 1, None, default=1, doc="adaptation steps per test batch")

# Orders of the test stream: fn(labels int64 [N] (CPU), generator) -> a permutation int64 [N]
StreamOrder = Callable[["torch.Tensor", "torch.Generator"], "torch.Tensor"]
STREAMS: Registry[StreamOrder] = Registry("test stream order")


@STREAMS.register("shuffled")
def _shuffled(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A seeded random order of the test set (an i.i.d. stream)."""
    import torch

    return torch.randperm(len(labels), generator=g)


@STREAMS.register("class_ordered")
def _class_ordered(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The test set sorted by label (stable, so ties keep the stored order): a stream whose
    batches hold one or two classes."""
    import torch

    return torch.sort(labels, stable=True).indices


STREAM = Param(
    "stream",
    "",
    str,
    default="shuffled",
    doc="order of the test stream the method adapts on",
    choices=tuple(STREAMS.names()),
)

# the parameters each method declares (config validation and grid expansion follow from them)
METHOD_PARAMS: dict[str, tuple[Param, ...]] = {
    "source": (),
    "norm": (BATCH_SIZE, STREAM),
    "tent": (LR, BATCH_SIZE, STEPS, STREAM),
}


def method_id(method: dict) -> str:
    """The name of one method setting in tables: the method, then each declared parameter as
    name and value (``tent-lr0.001-batch_size64-steps1-shuffled``; a choice as its value)."""
    parts = [method["name"]]
    for p in METHOD_PARAMS[method["name"]]:
        if p.name in method:
            value = method[p.name]
            parts.append(value if p.kind is str else f"{p.name}{value:g}")
    return "-".join(parts)


def stream_order(labels: torch.Tensor, stream: str, seed: int) -> torch.Tensor:
    """The order (a permutation of positions, int64 on the CPU) in which a method sees a test
    set with ``labels``; ``seed`` draws the ``shuffled`` order."""
    import torch

    return STREAMS.get(stream)(labels.cpu(), torch.Generator().manual_seed(int(seed)))


def _bn_types() -> tuple[type, ...]:
    from torch import nn

    return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` contains a batch-norm layer."""
    types = _bn_types()
    return any(isinstance(m, types) for m in model.modules())


def bn_affine_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The affine parameters (weight, then bias) of every batch-norm layer, in module order."""
    types = _bn_types()
    params = []
    for m in model.modules():
        if isinstance(m, types) and m.affine:
            params += [m.weight, m.bias]
    return params


def _require_batchnorm(model: nn.Module, method: str) -> None:
    if not has_batchnorm(model):
        raise ValueError(
            f"test-time adaptation {method!r} needs a model with batch-norm layers (norm and tent "
            f"adapt batch norm), but this {type(model).__name__} has none; models with batch "
            f"norm: {', '.join(models_where(batchnorm=True))}"
        )


def configure_norm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose batch-norm layers normalise with each batch's statistics.

    The copy is in eval mode except its batch-norm layers, which are in train mode with
    running statistics removed (``track_running_stats`` off): they neither use nor update them.
    """
    _require_batchnorm(model, "norm")
    adapted = copy.deepcopy(model)
    adapted.eval()
    types = _bn_types()
    for m in adapted.modules():
        if isinstance(m, types):
            m.train()
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return adapted


def configure_tent(model: nn.Module) -> tuple[nn.Module, list[nn.Parameter]]:
    """A deep copy of ``model`` configured as by ``configure_norm``, with only its batch-norm
    affine parameters trainable; returns (the copy, those parameters)."""
    _require_batchnorm(model, "tent")
    adapted = configure_norm(model)
    adapted.requires_grad_(False)
    params = bn_affine_parameters(adapted)
    if not params:
        raise ValueError(
            "tent adapts the batch-norm affine parameters, but the model's batch-norm layers "
            "have none (affine=False); models with batch norm: "
            + ", ".join(models_where(batchnorm=True))
        )
    for p in params:
        p.requires_grad_(True)
    return adapted, params


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-example Shannon entropy (nats) of softmax(logits), differentiable."""
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of ``batch_size``; a trailing single example joins the batch before."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        yield slice(start, starts[i + 1] if i + 1 < len(starts) else n)


def _check_batch_statistics(images: torch.Tensor, method: str) -> None:
    if len(images) < 2:
        raise ValueError(
            f"{method!r} normalises with the statistics of each test batch and needs at least "
            f"2 images; got {len(images)}"
        )


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch's generators for the block and restore them after it."""
    import torch

    devices = []
    if device.type == "cuda":
        devices = [torch.cuda.current_device() if device.index is None else device.index]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def adapt_tent(
    model: nn.Module,
    params: list[nn.Parameter],
    images: torch.Tensor,
    *,
    batch_size: int,
    lr: float,
    steps: int = 1,
) -> torch.Tensor:
    """Run tent IN PLACE on a model prepared by ``configure_tent``; returns the logits.

    Online: ``params`` carry over from batch to batch. For each batch, ``steps`` times:
    forward, mean entropy, backward, Adam step; the batch's logits are those of its last
    forward pass (before that pass's update)."""
    import torch

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps!r}")
    _check_batch_statistics(images, "tent")
    optimizer = build_optimizer(params, {"name": "adam", "lr": lr, "weight_decay": 0.0})
    outputs = []
    # gradients even if the caller runs under no_grad / inference_mode
    with torch.inference_mode(False), torch.enable_grad():
        for sel in _batches(len(images), batch_size):
            x = images[sel].clone()  # a normal tensor even if images is an inference tensor
            for _ in range(steps):
                logits = model(x)
                loss = softmax_entropy(logits).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            outputs.append(logits.detach())
    return torch.cat(outputs)


@METHODS.register("source")
def source(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    steps: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """No adaptation: eval-mode predictions (batch norm uses its running statistics)."""
    from corruptlab.train.training import predict

    with _seeded(seed, images.device):
        return predict(model, images, batch_size=batch_size)


@METHODS.register("norm")
def norm(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    steps: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """Test-batch statistics in batch norm (Schneider et al. 2020); no parameter changes."""
    import torch

    _check_batch_statistics(images, "norm")
    adapted = configure_norm(model)
    with _seeded(seed, images.device), torch.inference_mode():
        return torch.cat([adapted(images[s]) for s in _batches(len(images), batch_size)])


@METHODS.register("tent")
def tent(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 128,
    lr: float = 1e-3,
    steps: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """Entropy minimisation on the batch-norm affine parameters (Wang et al. 2021, TENT)."""
    import torch

    # a copy made under inference mode would hold inference tensors, which autograd refuses
    with torch.inference_mode(False):
        adapted, params = configure_tent(model)
        with _seeded(seed, images.device):
            return adapt_tent(adapted, params, images, batch_size=batch_size, lr=lr, steps=steps)


def eval_methods(study: dict) -> list[dict]:
    """The (validated) study's adaptation method settings in the configured order, list-valued
    parameters expanded (the order is each method's ``method_order`` in the tables)."""
    from corruptlab.core.grid import expand_grid

    return [
        m
        for spec in study["evaluation"]["methods"]
        for m in expand_grid(spec, "name", METHOD_PARAMS[spec["name"]])
    ]
