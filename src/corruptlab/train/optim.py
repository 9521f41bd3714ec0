"""Optimizer registry. Each entry declares its parameters (for validation and run paths) and
builds a ``FunctionalOptimizer``; torch is imported only when one is built.

``FunctionalOptimizer`` performs exactly the update of the corresponding ``torch.optim`` class
(bit-identical parameters, same state tensors) by calling torch.optim's functional API
(``torch.optim.adam.adam`` etc.). The ``torch.optim.Optimizer`` classes are avoided because
the first call of one of their methods imports ``torch._dynamo`` (about 2 s per process, i.e.
per training job); the functional API does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    import torch

LR = Param("lr", "lr", float, 0.0, None, doc="learning rate", low_open=True)
WD = Param("weight_decay", "wd", float, 0.0, None, default=0.0, doc="L2 weight decay")


@dataclass(frozen=True)
class OptimizerKind:
    name: str
    params: tuple[Param, ...]
    build: Callable[..., Any]
    doc: str

    def slug(self, values: dict) -> str:
        return slug(self.name, self.params, values)


OPTIMIZERS: Registry[OptimizerKind] = Registry("optimizer")


def _register(name: str, doc: str, *params: Param):
    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        OPTIMIZERS.add(name, OptimizerKind(name, params, build, doc))
        return build

    return decorate


# Per optimizer: its hyperparameters (the registry's params) and its per-parameter state
# tensors, named as in torch.optim (so that a torch.optim state dict can be loaded).
_HYPERPARAMETERS = {
    "adadelta": ("lr", "weight_decay"),
    "sgd": ("lr", "momentum", "weight_decay"),
    "adam": ("lr", "weight_decay"),
}
_STATE_KEYS = {
    "adadelta": ("step", "square_avg", "acc_delta"),
    "sgd": ("momentum_buffer",),
    "adam": ("step", "exp_avg", "exp_avg_sq"),
}


class FunctionalOptimizer:
    """One parameter group optimised by ``name`` ("adadelta", "sgd" or "adam"), stepping
    exactly as ``torch.optim.Adadelta(lr, rho=0.9, eps=1e-6, weight_decay)``,
    ``torch.optim.SGD(lr, momentum, weight_decay)`` (no dampening, no Nesterov) or
    ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay)`` with their defaults
    (foreach on CUDA, single-tensor otherwise; parameters without a gradient are skipped).

    ``state_dict()`` is a plain dict (``optimizer``, ``hyperparameters``, and ``state``: one
    dict of tensors per parameter, empty before its first step), loadable with
    ``torch.load(weights_only=True)``; ``load_state_dict`` also accepts a ``torch.optim``
    state dict of the same optimizer (checkpoints written before this class existed)."""

    def __init__(self, parameters: Iterable[torch.Tensor], name: str, **hyperparameters: float):
        if name not in _HYPERPARAMETERS:
            raise ValueError(f"FunctionalOptimizer has no optimizer {name!r}")
        if set(hyperparameters) != set(_HYPERPARAMETERS[name]):
            raise TypeError(
                f"{name} takes hyperparameters {_HYPERPARAMETERS[name]}, "
                f"got {tuple(hyperparameters)}"
            )
        self.name = name
        self.hyperparameters = dict(hyperparameters)
        self.params: list[torch.Tensor] = list(parameters)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("some parameters appear more than once")
        for p in self.params:
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"FunctionalOptimizer({self.name}, {hyper}, {len(self.params)} parameters)"

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()

    def step(self) -> None:
        import torch

        with_grad = [
            (p, s) for p, s in zip(self.params, self.state, strict=True) if p.grad is not None
        ]
        if not with_grad:
            return
        params = [p for p, _ in with_grad]
        states = [s for _, s in with_grad]
        grads = [p.grad for p in params]
        with torch.no_grad():
            getattr(self, f"_step_{self.name}")(params, grads, states)

    def _step_adadelta(self, params, grads, states) -> None:
        import torch
        from torch.optim.adadelta import adadelta

        _check_dense(grads, "Adadelta")
        _init_state(params, states, ("square_avg", "acc_delta"))
        adadelta(
            params,
            grads,
            [s["square_avg"] for s in states],
            [s["acc_delta"] for s in states],
            [s["step"] for s in states],
            foreach=None,
            has_complex=any(torch.is_complex(p) for p in params),
            lr=self.hyperparameters["lr"],
            rho=0.9,
            eps=1e-6,
            weight_decay=self.hyperparameters["weight_decay"],
            maximize=False,
        )

    def _step_sgd(self, params, grads, states) -> None:
        from torch.optim.sgd import sgd

        momentum = self.hyperparameters["momentum"]
        # None before a parameter's first step: sgd then starts the buffer from the gradient
        buffers = [s.get("momentum_buffer") for s in states] if momentum != 0 else []
        sgd(
            params,
            grads,
            buffers,
            has_sparse_grad=any(g.is_sparse for g in grads),
            foreach=None,
            fused=None,
            weight_decay=self.hyperparameters["weight_decay"],
            momentum=momentum,
            lr=self.hyperparameters["lr"],
            dampening=0,
            nesterov=False,
            maximize=False,
        )
        if momentum != 0:
            for s, buf in zip(states, buffers, strict=True):
                s["momentum_buffer"] = buf

    def _step_adam(self, params, grads, states) -> None:
        import torch
        from torch.optim.adam import adam

        _check_dense(grads, "Adam")
        _init_state(params, states, ("exp_avg", "exp_avg_sq"))
        adam(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            foreach=None,
            fused=None,
            has_complex=any(torch.is_complex(p) for p in params),
            amsgrad=False,
            beta1=0.9,
            beta2=0.999,
            lr=self.hyperparameters["lr"],
            weight_decay=self.hyperparameters["weight_decay"],
            eps=1e-8,
            maximize=False,
        )

    def state_dict(self) -> dict[str, Any]:
        """The hyperparameters and state (the state's tensors themselves, not copies)."""
        return {
            "optimizer": self.name,
            "hyperparameters": dict(self.hyperparameters),
            "state": [dict(s) for s in self.state],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (tensors copied to each parameter's device and dtype;
        steps on the CPU, as torch.optim keeps them) or a torch.optim state dict."""
        import torch

        if "param_groups" in state_dict:  # torch.optim's format: state keyed by index
            indices = [i for group in state_dict["param_groups"] for i in group["params"]]
            saved = [state_dict["state"].get(i, {}) for i in indices]
            hyper = self.hyperparameters
        else:
            if state_dict.get("optimizer") != self.name:
                raise ValueError(
                    f"state dict of optimizer {state_dict.get('optimizer')!r}, "
                    f"this is {self.name!r}"
                )
            saved = state_dict["state"]
            hyper = state_dict["hyperparameters"]
            if set(hyper) != set(self.hyperparameters):
                raise ValueError(f"state dict hyperparameters {sorted(hyper)} for {self.name}")
        if len(saved) != len(self.params):
            raise ValueError(
                f"state dict for {len(saved)} parameters, optimizer has {len(self.params)}"
            )
        keys = set(_STATE_KEYS[self.name])
        states = []
        for i, (p, s) in enumerate(zip(self.params, saved, strict=True)):
            s = {k: v for k, v in s.items() if v is not None}  # torch once kept None buffers
            if s and set(s) != keys:
                raise ValueError(f"state of parameter {i} has {sorted(s)}, expected {sorted(keys)}")
            state = {}
            for key, value in s.items():
                if key == "step":
                    step = torch.as_tensor(value, dtype=_scalar_dtype(), device="cpu")
                    state[key] = step.clone()
                    continue
                if value.shape != p.shape:
                    raise ValueError(
                        f"state {key!r} of parameter {i} has shape {tuple(value.shape)}, "
                        f"the parameter {tuple(p.shape)}"
                    )
                dtype = p.dtype if p.is_floating_point() else value.dtype
                state[key] = value.detach().to(device=p.device, dtype=dtype, copy=True)
            states.append(state)
        self.hyperparameters = {k: hyper[k] for k in _HYPERPARAMETERS[self.name]}
        self.state = states


def _scalar_dtype() -> torch.dtype:
    """The dtype of ``step`` as torch.optim makes it (without capturable/fused)."""
    import torch

    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _init_state(params, states, moments: tuple[str, ...]) -> None:
    """Lazy state initialisation as in torch.optim: a step counter on the CPU and zeros."""
    import torch

    for p, s in zip(params, states, strict=True):
        if not s:
            s["step"] = torch.zeros((), dtype=_scalar_dtype(), device="cpu")
            for key in moments:
                s[key] = torch.zeros_like(p, memory_format=torch.preserve_format)


def _check_dense(grads, optimizer: str) -> None:
    if any(g.is_sparse for g in grads):
        raise RuntimeError(f"{optimizer} does not support sparse gradients")


@_register("adadelta", "Adadelta (Rolnick et al.'s optimizer), rho 0.9, eps 1e-6", LR, WD)
def _adadelta(parameters: Iterable, lr: float, weight_decay: float) -> FunctionalOptimizer:
    return FunctionalOptimizer(parameters, "adadelta", lr=lr, weight_decay=weight_decay)


@_register(
    "sgd",
    "SGD with optional (heavy-ball) momentum",
    LR,
    Param("momentum", "m", float, 0.0, 1.0, default=0.0, doc="momentum"),
    WD,
)
def _sgd(
    parameters: Iterable, lr: float, momentum: float, weight_decay: float
) -> FunctionalOptimizer:
    return FunctionalOptimizer(
        parameters, "sgd", lr=lr, momentum=momentum, weight_decay=weight_decay
    )


@_register("adam", "Adam, betas (0.9, 0.999)", LR, WD)
def _adam(parameters: Iterable, lr: float, weight_decay: float) -> FunctionalOptimizer:
    return FunctionalOptimizer(parameters, "adam", lr=lr, weight_decay=weight_decay)


def build_optimizer(parameters: Iterable, spec: dict):
    """Build from ``{"name": ..., **params}`` (missing optional params take their defaults)."""
    kind = OPTIMIZERS.get(spec["name"])
    values = {p.name: spec.get(p.name, p.default) for p in kind.params}
    return kind.build(parameters, **values)
