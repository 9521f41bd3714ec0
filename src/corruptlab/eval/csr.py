"""The critical sample ratio (Arpit et al. 2017, *A Closer Look at Memorization in Deep
Networks*, Section 4): a data-dependent measure of how complex a classifier's decision boundary
is around the data.

A point x is *critical* if some x' in its L-infinity ball of radius r is classified differently
from x. The critical sample ratio (CSR) of a set is the share of its points found critical. The
paper looks for x' with the *Langevin adversarial sample search* (LASS): signed-gradient steps
away from the predicted class, plus Gaussian noise, projected back onto the ball, until the
prediction changes. A network that memorizes (randY) needs a boundary that bends around many
single points, so its CSR grows with training faster than that of one fitting real data.

Everything here works in the model's *input space*: radius and step sizes are given on the scale
of the tensors the model is fed. The workflow standardises images, x = (u8 / 255 - mean) / std,
so a length of v on the 0..255 pixel scale is ``pixel_scale_to_input(v, std)`` = v / 255 / std
there.

The defaults are Arpit et al.'s: their released LASS code (``lass_tf.py``, "Code from Devansh
Arpit", in Ma et al. 2018's dimensionality-driven-learning repository) searches with a = 0.25/255
(step along the gradient's sign), b = 0.2/255 (noise coefficient) and r = 0.3/255 (L-infinity
radius) for inputs in [0, 1] ("otherwise scale accordingly"): on the 0..255 pixel scale
``ALPHA_255`` = 0.25, ``BETA_255`` = 0.2 and ``R_255`` = 0.3, a radius of less than one grey level.
A blog reproduction of the paper (emiliocantuc.github.io, memorization post) keeps these defaults
in its ``lass`` function but calls it with r = 40/255, 133 times larger: its CSRs are not
comparable with the paper's. Their code iterates up to 100 times over the whole set and stops
once an iteration finds fewer than 20 new critical points; ours searches each point for at most
``csr_steps`` steps (default 20) and stops at the first prediction change. No clipping to the
valid pixel range is done (neither does the paper's code by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch
    from torch import nn

ALPHA_255 = 0.25  # LASS step on the 0..255 pixel scale (Arpit et al.'s code: 0.25/255 on [0, 1])
BETA_255 = 0.2  # LASS noise standard deviation on the 0..255 pixel scale
R_255 = 0.3  # L-infinity radius on the 0..255 pixel scale


def pixel_scale_to_input(value_255: float, std: float) -> float:
    """A length on the 0..255 pixel scale in the standardised input space, where
    x = (u8 / 255 - mean) / std: ``value_255 / 255 / std`` (the mean cancels in differences)."""
    if not std > 0:
        raise ValueError(f"pixel_scale_to_input: std must be > 0, got {std!r}")
    return float(value_255) / 255.0 / float(std)


class SearchResult(NamedTuple):
    """What ``langevin_adversarial_search`` returns for a batch of N points.

    - ``x_adv``: [N, ...] the first point whose prediction differs from the original one where
      ``found``, else the search's last point; always within the L-infinity ball of radius r
      around x (up to float rounding);
    - ``found``: bool [N], the search crossed the decision boundary;
    - ``steps``: int64 [N], the step at which it first crossed (1-based), -1 where not found;
    - ``pred``: int64 [N], the class predicted at x;
    - ``pred_adv``: int64 [N], the class predicted at ``x_adv``.
    """

    x_adv: torch.Tensor
    found: torch.Tensor
    steps: torch.Tensor
    pred: torch.Tensor
    pred_adv: torch.Tensor


class _frozen:
    """Context: every module in eval mode and every parameter with requires_grad off; restores
    each module's mode and each parameter's flag afterwards (also on errors)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.model.eval()
        for p, _ in self.flags:
            p.requires_grad_(False)
        return self.model

    def __exit__(self, *exc) -> None:
        for m, training in self.modes:
            m.training = training
        for p, flag in self.flags:
            p.requires_grad_(flag)


def _check_search_args(r: float, alpha: float, beta: float, steps: int) -> None:
    if not r >= 0:
        raise ValueError(f"radius r must be >= 0, got {r!r}")
    if not alpha >= 0 or not beta >= 0:
        raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha!r}, beta={beta!r}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")


def _search(
    model: nn.Module,
    x: torch.Tensor,
    r: float,
    alpha: float,
    beta: float,
    steps: int,
    generator: torch.Generator,
) -> SearchResult:
    """LASS on a model already frozen by ``_frozen``."""
    import torch

    x = x.detach()
    n = x.shape[0]
    device = x.device
    with torch.no_grad():
        pred = model(x).argmax(1)
    x_cur = x.clone()
    x_adv = x.clone()
    pred_adv = pred.clone()
    found = torch.zeros(n, dtype=torch.bool, device=device)
    first = torch.full((n,), -1, dtype=torch.int64, device=device)
    active = torch.arange(n, device=device)  # indices still searching
    for step in range(1, int(steps) + 1):
        # Drawn for the whole batch every step, so an example's noise does not depend on
        # which other examples have stopped.
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
        xa = x_cur[active].requires_grad_(True)
        with torch.enable_grad():
            logp = model(xa).log_softmax(1).gather(1, pred[active, None]).sum()
            (grad,) = torch.autograd.grad(logp, xa)
        with torch.no_grad():
            x0 = x[active]
            moved = xa.detach() - alpha * grad.sign() + beta * noise[active]
            moved = x0 + (moved - x0).clamp_(-r, r)  # back onto the L-infinity ball
            x_cur[active] = moved
            now = model(moved).argmax(1)
            crossed = now != pred[active]
            if crossed.any():
                idx = active[crossed]
                x_adv[idx] = moved[crossed]
                pred_adv[idx] = now[crossed]
                found[idx] = True
                first[idx] = step
                active = active[~crossed]
        if active.numel() == 0:
            break
    if active.numel():
        x_adv[active] = x_cur[active]
        with torch.no_grad():
            pred_adv[active] = model(x_cur[active]).argmax(1)
    return SearchResult(x_adv, found, first, pred, pred_adv)


def langevin_adversarial_search(
    model: nn.Module,
    x: torch.Tensor,
    r: float,
    alpha: float,
    beta: float,
    steps: int,
    generator: torch.Generator,
) -> SearchResult:
    """The Langevin adversarial sample search (LASS, Arpit et al. 2017, Algorithm 1) on a batch.

    ``x`` [N, ...] is a batch in the model's input space (on the model's device); ``r``,
    ``alpha`` and ``beta`` are in that space too (see ``pixel_scale_to_input``). Let k be the
    class the model predicts at x. Starting at x' = x, each of at most ``steps`` steps does::

        x' <- x + clamp(x' - alpha * sign(grad_x' log softmax(model(x'))_k) + beta * eps - x,
                        -r, r),    eps ~ N(0, I) drawn from ``generator``

    and an example stops at the first step where the prediction at x' differs from k (that x'
    is kept). The *minus* sign moves against the gradient of class k's output, i.e. away from
    class k and towards the decision boundary: for a linear model, sign steps are the fastest
    way to lower class k's score within an L-infinity budget, so the search reaches the ball's
    best corner. Stepping up the gradient would push further into class k and never cross. The
    output used is the log of the softmax probability of class k, whose gradient has the same
    sign as that of the probability itself (the paper's f_k) but does not vanish in float32
    when the softmax saturates; a raw logit would have zero gradient for, e.g., a class whose
    logit is held constant.

    The model runs in eval mode with its parameters' ``requires_grad`` switched off (gradients
    are taken w.r.t. the input only, no ``.grad`` is written); each module's mode and each
    parameter's flag are restored afterwards. Works inside ``torch.no_grad()``. The result is
    a deterministic function of the model, x and the generator's state (the generator must be
    on x's device); it advances the generator by ``steps`` (or fewer) draws of x's shape.
    Returns a ``SearchResult``.
    """
    _check_search_args(r, alpha, beta, steps)
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    with _frozen(model):
        return _search(model, x, float(r), float(alpha), float(beta), int(steps), generator)


def _model_device(model: nn.Module, default: torch.device) -> torch.device:
    for p in model.parameters():
        return p.device
    return default


def critical_samples(
    model: nn.Module,
    images: torch.Tensor,
    r: float,
    alpha: float,
    beta: float,
    steps: int,
    seed: int,
    batch_size: int = 512,
) -> torch.Tensor:
    """Bool [N] on the CPU: for each of ``images`` (float [N, ...], the model's input space),
    whether LASS found a differently classified point within the ball (see
    ``critical_sample_ratio``)."""
    import torch

    _check_search_args(r, alpha, beta, steps)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = _model_device(model, images.device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    out = torch.zeros(images.shape[0], dtype=torch.bool)
    with _frozen(model):
        for start in range(0, images.shape[0], int(batch_size)):
            x = images[start : start + int(batch_size)].to(device)
            if not x.is_floating_point():
                raise ValueError(f"images must be floating point, got {x.dtype}")
            res = _search(model, x, float(r), float(alpha), float(beta), int(steps), generator)
            out[start : start + x.shape[0]] = res.found.cpu()
    return out


def critical_sample_ratio(
    model: nn.Module,
    images: torch.Tensor,
    r: float,
    alpha: float,
    beta: float,
    steps: int,
    seed: int,
    batch_size: int = 512,
) -> float:
    """The share of ``images`` that are critical: LASS (``langevin_adversarial_search``, at
    most ``steps`` steps of size ``alpha`` with noise ``beta``) finds x' with
    ||x' - x||_inf <= r whose predicted class differs from that of x.

    ``images`` are float [N, ...] already in the model's input space (r, alpha, beta too);
    batches of ``batch_size`` are moved to the model's device. One ``torch.Generator`` on that
    device, seeded with ``seed``, draws the noise of all batches in order, so the result is
    deterministic for a given (model, images, seed, batch_size) on a given device (a different
    batch_size or device draws different noise). Returns a float in [0, 1] (NaN for no images).
    """
    found = critical_samples(model, images, r, alpha, beta, steps, seed, batch_size)
    if found.numel() == 0:
        return float("nan")
    return float(found.float().mean())
