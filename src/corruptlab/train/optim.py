"""Optimizer registry. Each entry declares its parameters (for validation and run paths) and
builds a ``torch.optim`` optimizer; torch is imported only when one is built.

What is built is a thin subclass of the real class (``torch.optim.Adadelta``, ``SGD``, ``Adam``)
whose methods are the undecorated ones. torch.optim's ``Optimizer`` wraps ``add_param_group``,
``zero_grad``, ``state_dict`` and ``load_state_dict`` in ``@torch._disable_dynamo`` (whose
wrapper imports ``torch._dynamo`` the first time it runs, torch/_compile.py) and every
``step`` in ``_use_grad_for_differentiable`` (which imports it too, for ``graph_break()``):
without the subclass each training job imports torch._dynamo (sympy, torch._inductor, ...)
although nothing is compiled. The subclass runs the same code (``inspect.unwrap``; ``step``
under ``torch.set_grad_enabled(differentiable)``, as the decorator does), so parameters are
bit-identical to plain torch.optim, and saves about 1.2-1.35 s per process, measured with
``uv run python benchmarks/optim_import.py`` (see benchmarks/README.md).

State dicts are torch.optim's, plus an ``optimizer`` key naming the registry entry;
``load_state_dict`` copies the state it loads (plain torch.optim would share the tensors with
the loaded dict) and refuses a state dict of another optimizer or another parameter count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry

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


# the torch.optim class behind each registry entry
_TORCH_CLASSES = {"adadelta": "Adadelta", "sgd": "SGD", "adam": "Adam"}


@cache
def optimizer_class(name: str) -> type:
    """The subclass of ``torch.optim.<class of name>`` without torch._dynamo's decorators (built
    once per process)."""
    import inspect

    import torch
    from torch.optim.optimizer import Optimizer

    base = getattr(torch.optim, _TORCH_CLASSES[name])
    raw_step = inspect.unwrap(base.step)
    raw_state_dict = inspect.unwrap(Optimizer.state_dict)
    raw_load_state_dict = inspect.unwrap(Optimizer.load_state_dict)

    def step(self, closure=None):
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return raw_step(self, closure)

    def state_dict(self) -> dict[str, Any]:
        return {**raw_state_dict(self), "optimizer": name}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _check_state_dict(self, name, state_dict)
        copied = {
            **state_dict,
            "state": {
                i: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                for i, s in state_dict["state"].items()
            },
        }
        copied.pop("optimizer", None)
        raw_load_state_dict(self, copied)

    namespace = {
        "__doc__": f"torch.optim.{base.__name__} without torch._dynamo's method decorators.",
        "__module__": __name__,
        "add_param_group": inspect.unwrap(Optimizer.add_param_group),
        "zero_grad": inspect.unwrap(Optimizer.zero_grad),
        "state_dict": state_dict,
        "load_state_dict": load_state_dict,
        "step": step,
    }
    return type(base.__name__, (base,), namespace)


def _check_state_dict(optimizer, name: str, state_dict: dict[str, Any]) -> None:
    """Refuse a state dict of another optimizer, or of another number of parameters."""
    saved_name = state_dict.get("optimizer")
    groups = state_dict["param_groups"]
    if saved_name is None:  # a plain torch.optim state dict: compare its hyper-parameter keys
        keys = {k for g in groups for k in g} - {"params", "param_names"}
        if keys != set(optimizer.defaults):
            raise ValueError(
                f"state dict of another optimizer (hyper-parameters {sorted(keys)}), "
                f"this is {name!r}"
            )
    elif saved_name != name:
        raise ValueError(f"state dict of optimizer {saved_name!r}, this is {name!r}")
    saved = [len(g["params"]) for g in groups]
    mine = [len(g["params"]) for g in optimizer.param_groups]
    if saved != mine:
        raise ValueError(
            f"state dict for {sum(saved)} parameters, the optimizer has {sum(mine)} parameters"
        )


@_register("adadelta", "Adadelta (Rolnick et al.'s optimizer), rho 0.9, eps 1e-6", LR, WD)
def _adadelta(parameters: Iterable, lr: float, weight_decay: float):
    cls = optimizer_class("adadelta")
    return cls(parameters, lr=lr, rho=0.9, eps=1e-6, weight_decay=weight_decay)


@_register(
    "sgd",
    "SGD with optional (heavy-ball) momentum",
    LR,
    Param("momentum", "m", float, 0.0, 1.0, default=0.0, doc="momentum"),
    WD,
)
def _sgd(parameters: Iterable, lr: float, momentum: float, weight_decay: float):
    cls = optimizer_class("sgd")
    return cls(
        parameters,
        lr=lr,
        momentum=momentum,
        dampening=0,
        weight_decay=weight_decay,
        nesterov=False,
    )


@_register("adam", "Adam, betas (0.9, 0.999)", LR, WD)
def _adam(parameters: Iterable, lr: float, weight_decay: float):
    cls = optimizer_class("adam")
    return cls(parameters, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)


def build_optimizer(parameters: Iterable, spec: dict):
    """Build from ``{"name": ..., **params}`` (missing optional params take their defaults;
    other keys, such as an lr ``schedule``, are not the optimizer's)."""
    kind = OPTIMIZERS.get(spec["name"])
    values = {p.name: spec.get(p.name, p.default) for p in kind.params}
    return kind.build(parameters, **values)
