"""Declared parameters of registry entries (noise kinds, optimizers, adaptation methods): types,
ranges or choices, path codes.

A registry entry declares its parameters once; config validation, grid expansion and the
run's path slug (``uniform-a5``, ``adadelta-lr0.1-bs128``) all follow from that declaration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    code: str  # short code used in path slugs, e.g. "a" for alpha
    kind: type  # int, float, bool, or str (then ``choices`` lists the accepted values)
    low: float | None = None
    high: float | None = None
    default: Any = None  # None: required
    doc: str = ""
    low_open: bool = False  # the lower bound itself is excluded (e.g. a learning rate > 0)
    choices: tuple[str, ...] = ()  # the accepted values of a str parameter

    def accepted(self) -> str:
        if self.kind is str:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        kind = "an integer" if self.kind is int else "a number"
        return f"{kind} in {'(' if self.low_open else '['}{lo}, {hi}]"

    def check(self, value: Any) -> str | None:
        """None if ``value`` is acceptable, else the reason it is not."""
        if self.kind is str:
            return None if value in self.choices else f"got {value!r}; accepted: {self.accepted()}"
        if self.kind is bool:
            return None if isinstance(value, bool) else f"got {value!r}; accepted: true or false"
        ok_type = isinstance(value, int) if self.kind is int else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            return f"got {value!r}; accepted: {self.accepted()}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"got {value!r}; accepted: {self.accepted()}"
        if self.low is not None and self.low_open and value <= self.low:
            return f"got {value!r}; accepted: {self.accepted()}"
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            return f"got {value!r}; accepted: {self.accepted()}"
        return None


def fmt_number(value: float | int | str) -> str:
    """Compact, path-safe text for a number: 5 -> '5', 0.1 -> '0.1', 1e-05 -> '1e-05' (a choice
    parameter's value is its own text; a flag's True -> '1', False -> '0')."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def slug(name: str, params: tuple[Param, ...], values: dict[str, Any]) -> str:
    """``name`` followed by ``-<code><value>`` for each declared parameter, in declared order."""
    parts = [name] + [f"{p.code}{fmt_number(values[p.name])}" for p in params]
    return "-".join(parts)
