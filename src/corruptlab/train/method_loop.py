"""Ways to fit a model other than training its weights by gradient descent, and the one loop that
runs them all: ``fit``. Each is an entry of the training-method registry
(``corruptlab.train.methods.METHODS``, which imports this module) whose fit function is
``fit_method`` (the registry's fit contract over ``fit``) and whose ``build`` makes its runner.

Each entry declares its hyper-parameters (``Param``s, with defaults and their sources in the
docstrings of ``supermask``, ``ticket_finder`` and ``gradient_free``). The entries:

- ``edge_popup``: an edge-popup supermask (``supermask``, Ramanujan et al. 2020) trained by
  SGD on its scores; ``k=0.5``, ``weights=signed_constant``, ``scale_fan=True`` (the frozen
  weights' std ``sqrt(2 / (k * fan_in))``, as Ramanujan et al.'s code with ``scale_fan``; in
  the default run's no_gd_quick, mlp_300_100 on mnist5k, 3 epochs of batch 128 at k = 0.5,
  test accuracy 0.915/0.901/0.918 over its 3 seeds with it, 0.898/0.876/0.894 without),
  ``lr=0.1``, ``momentum=0.9``, ``weight_decay=0.0``.
- ``bernoulli_supermask``: Zhou et al. 2019's sampled supermask, trained by SGD on its scores;
  ``weights=signed_constant``, ``lr=100.0``, ``momentum=0.9``, ``weight_decay=0.0``. The
  sigmoid's derivative (at most 1/4) and the small frozen weights make a score's gradient
  tiny, hence the large learning rate (ours: of 1, 10 and 100, mlp_300_100 on mnist5k reached
  0.35, 0.80 and 0.94 validation accuracy after 5 epochs of batch 128).
- ``ticket_finder``: ``TicketFinder`` over the model's own initial weights (the notebook's
  way); ``k=0.5``, ``lr=1.0`` (see ``ticket_finder``), ``momentum=0.9``,
  ``weight_decay=0.0``.
- ``random_search``, ``one_plus_one_es``, ``simulated_annealing``, ``genetic``, ``openai_es``:
  the gradient-free methods of ``gradient_free``, no backward pass.

``fit(model, data, cfg, checkpoint)`` runs a method in epochs: each epoch visits the training
set once in minibatches of ``cfg.batch_size`` in the order that ``training.train`` uses
(derived from the seed and the epoch); a gradient method takes one step per minibatch, a
gradient-free one runs one generation per minibatch. Every epoch's history row holds, beside
``training.RunRecord``'s columns (``train_loss``: the incumbent's mean loss over the epoch's
minibatches; ``val_loss``, ``val_accuracy`` of the current solution; ``seconds``):
``examples_forwarded`` in the epoch, ``examples_total`` and ``seconds_total`` so far, and the
method's own diagnostics (a mask's density, a step size, a temperature). Early stopping,
``restore_best`` and the checkpoint are ``training``'s: ``RunRecord`` and ``Checkpoint``, with
the method's whole state saved after every epoch, so a resumed run gives bit-identical results
to an uninterrupted one (all randomness comes from generators seeded by the run's seed, and
their states are checkpointed). A run may also stop on a budget: ``max_examples`` (checked
before each step or generation, so a run stops within one generation of it; deterministic) or
``max_seconds`` (wall time; not reproducible, off by default); ``stopped_by`` is then
``budget``. Examples forwarded count forward passes only: a gradient method's step forwards
its minibatch once and also pays a backward pass (about twice a forward's cost), which the
count leaves out; compare methods on ``seconds_total`` for that.

The result is ``training.TrainResult``; its ``best_state`` is a state dict of the model ``fit``
was given (for a supermask its effective weights ``w0 * mask``), so evaluation needs to know
nothing of the method.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corruptlab.core.params import Param
from corruptlab.train.methods import METHODS, Method, register_method

# the mask methods: their frozen weights never change (a claim checks their digest)
FROZEN = ("edge_popup", "bernoulli_supermask", "ticket_finder")


def _register(name: str, doc: str, *params: Param, gradients: bool):
    """Register ``build`` (``(model, seed, **values) -> runner``) as the training method
    ``name``, fitted by ``fit_method``."""

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        register_method(
            Method(
                name,
                f"{__name__}:fit_method",  # defined below
                params=params,
                doc=doc,
                gradient_free=not gradients,
                frozen_weights=name in FROZEN,
                build=build,
            )
        )
        return build

    return decorate


def _lr(default: float) -> Param:
    return Param("lr", "lr", float, 0.0, None, default=default, doc="learning rate", low_open=True)


K = Param("k", "k", float, 0.0, 1.0, default=0.5, doc="kept fraction per layer", low_open=True)
MOMENTUM = Param("momentum", "m", float, 0.0, 0.999, default=0.9, doc="heavy-ball momentum")
WD = Param("weight_decay", "wd", float, 0.0, None, default=0.0, doc="L2 decay of the scores")
WEIGHTS = Param(
    "weights",
    "w",
    str,
    default="signed_constant",
    doc="frozen weight init",
    choices=("kaiming_normal", "signed_constant"),
)
# Ramanujan et al.'s scale_fan: edge-popup's frozen weights with std sqrt(2 / (k fan_in))
SCALE_FAN = Param(
    "scale_fan",
    "sf",
    bool,
    default=True,
    doc="frozen weights' std sqrt(2 / (k * fan_in)) (false: sqrt(2 / fan_in))",
)
SIGMA = Param("sigma", "s", float, 0.0, None, default=0.01, doc="mutation std", low_open=True)
CHUNK = Param("chunk", "c", int, 0, None, default=0, doc="members per vmap call (0: all)")


# --- runners --------------------------------------------------------------------------------


def minibatches(data, cfg, epoch: int, budget: Budget):
    """The epoch's minibatches (images, labels) in ``training.train``'s order (derived from the
    seed and the epoch), until the budget is exhausted."""
    import torch

    from corruptlab.core.seeding import derive_seed

    n = len(data.indices)
    order = torch.Generator().manual_seed(derive_seed(cfg.seed, "order", epoch))
    perm = torch.randperm(n, generator=order).to(data.images.device)
    for start in range(0, n, cfg.batch_size):
        if budget.exhausted():
            return
        sel = perm[start : start + cfg.batch_size]
        x = data.images.index_select(0, data.indices.index_select(0, sel))
        yield x, data.labels.index_select(0, sel)


class GradientRunner:
    """A model and an optimizer; one optimizer step per minibatch."""

    gradients = True

    def __init__(self, model, optimizer, solution: Callable[[], dict], extra: Callable[[], dict]):
        self.model, self.optimizer = model, optimizer
        self._solution, self._extra = solution, extra

    def train_epoch(self, data, cfg, epoch: int, budget: Budget) -> tuple[float, int]:
        import torch
        import torch.nn.functional as F

        from corruptlab.core.seeding import derive_seed

        # dropout and sampled masks draw from the global generators, reseeded per epoch
        torch.manual_seed(derive_seed(cfg.seed, "dropout", epoch))
        self.model.train()
        total = torch.zeros((), dtype=torch.float64, device=data.images.device)
        seen = 0
        for x, y in minibatches(data, cfg, epoch, budget):
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach().double() * len(y)
            seen += len(y)
            budget.spend(len(y))
        return (total / seen).item() if seen else math.nan, seen

    def solution_state(self) -> dict:
        return self._solution()

    def extra(self) -> dict:
        return self._extra()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class GradientFreeRunner:
    """A gradient-free method (``gradient_free``); one generation per minibatch."""

    gradients = False

    def __init__(self, method, population) -> None:
        self.method, self.population = method, population

    def train_epoch(self, data, cfg, epoch: int, budget: Budget) -> tuple[float, int]:
        import torch

        total = torch.zeros((), dtype=torch.float64, device=data.images.device)
        seen = forwarded = 0
        with torch.no_grad():
            for x, y in minibatches(data, cfg, epoch, budget):
                loss, count = self.method.step(x, y)
                total += loss.double() * len(y)
                seen += len(y)
                forwarded += count
                budget.spend(count)
        return (total / seen).item() if seen else math.nan, forwarded

    def solution_state(self) -> dict:
        return self.population.state(self.method.solution())

    def extra(self) -> dict:
        return self.method.extra()

    def state_dict(self) -> dict:
        return {"method": self.method.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])


def _sgd(params, lr: float, momentum: float, weight_decay: float):
    from corruptlab.train.optim import build_optimizer

    spec = {"name": "sgd", "lr": lr, "momentum": momentum, "weight_decay": weight_decay}
    return build_optimizer(params, spec)


def _masked(
    model, seed: int, kind: str, k: float, weights: str, lr, momentum, weight_decay, scale_fan=False
):
    import torch

    from corruptlab.core.seeding import derive_seed
    from corruptlab.train.methods import FROZEN_DIGEST, MASK_DENSITY, weights_digest
    from corruptlab.train.supermask import (
        effective_state,
        mask_density,
        masked_layers,
        supermask,
    )

    generator = torch.Generator().manual_seed(derive_seed(seed, "supermask", kind))
    masked = supermask(model, kind, k=k, weights=weights, scale_fan=scale_fan, generator=generator)
    frozen = {
        f"{name}.{part}": t
        for name, layer in masked_layers(masked)
        for part, t in (("weight", layer.weight), ("bias", layer.bias))
        if t is not None
    }

    def density() -> dict:
        d = mask_density(masked)
        return {
            "mask_density": sum(d.values()) / len(d),
            **{f"{MASK_DENSITY}{name}.weight": v for name, v in d.items()},
            FROZEN_DIGEST: weights_digest(frozen),
        }

    optimizer = _sgd(masked.parameters(), lr, momentum, weight_decay)
    return GradientRunner(masked, optimizer, lambda: effective_state(masked), density)


@_register(
    "edge_popup",
    "edge-popup supermask over frozen random weights (Ramanujan et al. 2020)",
    K,
    WEIGHTS,
    SCALE_FAN,
    _lr(0.1),
    MOMENTUM,
    WD,
    gradients=True,
)
def _edge_popup(model, seed: int, k, weights, scale_fan, lr, momentum, weight_decay):
    return _masked(model, seed, "edge_popup", k, weights, lr, momentum, weight_decay, scale_fan)


@_register(
    "bernoulli_supermask",
    "sampled Bernoulli supermask over frozen random weights (Zhou et al. 2019)",
    WEIGHTS,
    _lr(100.0),
    MOMENTUM,
    WD,
    gradients=True,
)
def _bernoulli(model, seed: int, weights, lr, momentum, weight_decay):
    return _masked(model, seed, "bernoulli", 1.0, weights, lr, momentum, weight_decay)


@_register(
    "ticket_finder",
    "TicketFinder: edge-popup over the model's own initial weights, as an optimizer",
    K,
    _lr(1.0),
    MOMENTUM,
    WD,
    gradients=True,
)
def _ticket_finder(model, seed: int, k, lr, momentum, weight_decay):
    from corruptlab.core.seeding import derive_seed
    from corruptlab.train.ticket_finder import TicketFinder

    model = copy.deepcopy(model)
    optimizer = TicketFinder(
        model.parameters(),
        lr=lr,
        k=k,
        momentum=momentum,
        weight_decay=weight_decay,
        seed=derive_seed(seed, "ticket_finder"),
    )

    def state() -> dict:
        return {n: v.detach().clone() for n, v in model.state_dict().items()}

    names = [name for name, _ in model.named_parameters()]

    def density() -> dict:
        from corruptlab.train.methods import FROZEN_DIGEST, MASK_DENSITY, weights_digest

        d = optimizer.density()
        w0 = [optimizer.state[p]["w0"] for p in model.parameters()]
        return {
            "mask_density": sum(d) / len(d),
            **{f"{MASK_DENSITY}{name}": v for name, v in zip(names, d, strict=True)},
            FROZEN_DIGEST: weights_digest(dict(zip(names, w0, strict=True))),
        }

    return GradientRunner(model, optimizer, state, density)


def _gradient_free(model, seed: int, cls_name: str, chunk: int, needs_init: bool, **hp):
    from corruptlab.core.seeding import derive_seed
    from corruptlab.train import gradient_free as gf

    population = gf.Population(model, chunk=chunk or None)
    theta0 = gf.flatten(model)
    if needs_init:
        hp["init"] = gf.Initialiser(model)
    method = getattr(gf, cls_name)(population, theta0, derive_seed(seed, cls_name), **hp)
    return GradientFreeRunner(method, population)


@_register(
    "random_search",
    "random search over initialisations",
    Param("population", "p", int, 1, None, default=16, doc="fresh initialisations per generation"),
    CHUNK,
    gradients=False,
)
def _random_search(model, seed: int, population, chunk):
    return _gradient_free(model, seed, "RandomSearch", chunk, True, size=population)


@_register(
    "one_plus_one_es",
    "(1+1)-ES with the 1/5 success rule",
    SIGMA,
    gradients=False,
)
def _one_plus_one(model, seed: int, sigma):
    return _gradient_free(model, seed, "OnePlusOneES", 0, False, sigma=sigma)


@_register(
    "simulated_annealing",
    "simulated annealing, geometric cooling (Kirkpatrick et al. 1983)",
    SIGMA,
    Param("t0", "t", float, 0.0, None, default=0.05, doc="initial temperature", low_open=True),
    Param("cooling", "cool", float, 0.0, 1.0, default=0.995, doc="T *= cooling per generation"),
    gradients=False,
)
def _annealing(model, seed: int, sigma, t0, cooling):
    return _gradient_free(
        model, seed, "SimulatedAnnealing", 0, False, sigma=sigma, t0=t0, cooling=cooling
    )


@_register(
    "genetic",
    "genetic algorithm: truncation selection, Gaussian mutation, elitism (Such et al. 2017)",
    Param("population", "p", int, 2, None, default=32, doc="members"),
    Param("truncation", "tr", float, 0.0, 1.0, default=0.25, doc="parent fraction", low_open=True),
    SIGMA,
    Param("elites", "e", int, 1, None, default=1, doc="best members kept unchanged"),
    CHUNK,
    gradients=False,
)
def _genetic(model, seed: int, population, truncation, sigma, elites, chunk):
    return _gradient_free(
        model,
        seed,
        "Genetic",
        chunk,
        True,
        size=population,
        truncation=truncation,
        sigma=sigma,
        elites=elites,
    )


@_register(
    "openai_es",
    "OpenAI-ES: antithetic pairs, centered ranks, Adam (Salimans et al. 2017)",
    Param("pairs", "n", int, 1, None, default=16, doc="antithetic pairs per generation"),
    Param("sigma", "s", float, 0.0, None, default=0.02, doc="noise std", low_open=True),
    _lr(0.01),
    Param("weight_decay", "wd", float, 0.0, None, default=0.005, doc="L2 coefficient"),
    CHUNK,
    gradients=False,
)
def _openai_es(model, seed: int, pairs, sigma, lr, weight_decay, chunk):
    return _gradient_free(
        model, seed, "OpenAIES", chunk, False, pairs=pairs, sigma=sigma, lr=lr,
        weight_decay=weight_decay,
    )  # fmt: skip


def build_runner(model, spec: dict, seed: int):
    """The runner of method ``spec`` (``{"name": ..., **params}``, a method of this loop) for
    ``model``."""
    method = METHODS.get(spec["name"])
    if method.build is None:
        raise ValueError(
            f"method {method.name!r} is not one of the loop's; accepted: "
            f"{', '.join(n for n, m in METHODS.items() if m.build is not None)}"
        )
    values = method.values(spec)
    del values["name"]
    return method.build(model, seed, **values)


# --- the loop -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodConfig:
    """A run of a method: ``training.TrainConfig``'s fields for the loop, the method instead of
    an optimizer and an objective (the loss is cross-entropy), and the budget."""

    method: dict  # {"name": ..., **params}
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3
    seed: int = 0
    restore_best: bool = True
    max_examples: int | None = None  # examples forwarded (P x B per generation)
    max_seconds: float | None = None  # wall seconds (not reproducible)

    def __post_init__(self) -> None:
        for name in ("max_examples", "max_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"MethodConfig.{name}: got {value!r}; accepted: > 0 or None")

    def key(self) -> str:
        """Identifies the configuration; a checkpoint is resumed only under the same key."""
        text = json.dumps(self.__dict__, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Budget:
    """Examples forwarded and wall seconds spent by a run, across resumes, and its limits."""

    def __init__(self, cfg: MethodConfig, examples: int = 0, seconds: float = 0.0) -> None:
        self.cfg, self.examples, self.seconds0 = cfg, examples, seconds
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.seconds0 + time.perf_counter() - self.t0

    def spend(self, examples: int) -> None:
        self.examples += examples

    def exhausted(self) -> bool:
        cfg = self.cfg
        return (cfg.max_examples is not None and self.examples >= cfg.max_examples) or (
            cfg.max_seconds is not None and self.seconds >= cfg.max_seconds
        )


def fit(
    model,
    data,
    cfg: MethodConfig,
    checkpoint: str | Path | None = None,
    progress: Any = None,
    on_epoch: Callable[[int, Any], dict] | None = None,
):
    """Fit ``model`` (on the data's device, initialised from the run's seed) by ``cfg.method``
    on ``data`` (``training.TrainData``); returns a ``training.TrainResult`` whose
    ``best_state`` loads into ``model``. ``model`` itself is not changed. See the module
    docstring for the loop, the history's columns, the budget and the checkpoint.
    ``progress`` is ``training.train``'s (advanced by the examples forwarded); ``on_epoch(epoch,
    solution)`` is too, given a copy of ``model`` holding the current solution."""
    import torch

    from corruptlab.train.training import Checkpoint, RunRecord, _validate, epoch_progress

    device = data.images.device
    runner = build_runner(model, cfg.method, cfg.seed)
    plain = copy.deepcopy(model)  # holds the solution for validation
    record = RunRecord(cfg)
    ckpt = Checkpoint(checkpoint, cfg.key())

    def state() -> dict[str, torch.Tensor]:
        return runner.solution_state()

    def validate() -> tuple[float, float]:
        plain.load_state_dict(runner.solution_state())
        return _validate(plain, data)

    def extra(epoch: int, epoch_examples: int) -> Callable[[], dict]:
        def columns() -> dict:
            row = {
                "examples_forwarded": epoch_examples,
                "examples_total": budget.examples,
                "seconds_total": budget.seconds,
                **runner.extra(),
            }
            if on_epoch is not None:
                plain.load_state_dict(runner.solution_state())
                row.update(on_epoch(epoch, plain))
            return row

        return columns

    saved = ckpt.load(device)
    if saved is not None:
        start_epoch = Checkpoint.restore(saved, [record]) + 1
        runner.load_state_dict(saved["runner"])
        budget = Budget(cfg, saved["examples_total"], saved["seconds_total"])
    else:
        start_epoch = 1
        budget = Budget(cfg)
        record.start(*validate(), state, extra(0, 0))
    resumed_from = start_epoch - 1

    def save(epoch: int) -> None:
        ckpt.save(
            epoch,
            [record],
            runner=runner.state_dict(),
            examples_total=budget.examples,
            seconds_total=budget.seconds,
        )

    for epoch in range(start_epoch, cfg.max_epochs + 1):
        if record.training and budget.exhausted():  # e.g. the seconds ran out since the check
            record._stop("budget", state)
            save(epoch - 1)
        if not record.training:
            break
        t0 = time.perf_counter()
        train_loss, forwarded = runner.train_epoch(data, cfg, epoch, budget)
        finite = math.isfinite(train_loss)
        val_loss, val_acc = validate() if finite else (math.nan, math.nan)
        seconds = time.perf_counter() - t0
        record.end_epoch(
            epoch, train_loss, val_loss, val_acc, seconds, state, extra(epoch, forwarded)
        )
        if record.training and budget.exhausted():
            record._stop("budget", state)
        if progress is not None:
            progress.update(forwarded)
        epoch_progress(progress, epoch, [record])
        save(epoch)
    return record.result(resumed_from)


def fit_method(model, data, cfg, spec, checkpoint, progress=None, on_epoch=None):
    """``fit`` under the registry's fit contract (``corruptlab.train.methods``): the run's
    batch size, epochs, patience, seed and restore_best from ``cfg``
    (``training.TrainConfig``), the method from ``spec``."""
    loop_cfg = MethodConfig(
        method=spec,
        batch_size=cfg.batch_size,
        max_epochs=cfg.max_epochs,
        patience=cfg.patience,
        seed=cfg.seed,
        restore_best=cfg.restore_best,
    )
    return fit(model, data, loop_cfg, checkpoint, progress, on_epoch)
