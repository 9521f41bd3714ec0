"""Helpers of config checks (corruptlab.core.config and the study kinds' ``check``): names
looked up in registries and declared parameters checked, each problem named by its key path and
what would be accepted. Tolerant of values the schema already rejected, so that every problem of
a config is reported in one go."""

from __future__ import annotations

from typing import Any

from corruptlab.core.params import Param


def choice_errors(where: str, value: str, registry) -> list[str]:
    if value not in registry:
        return [f"{where}: unknown {registry.kind} {value!r}; accepted: {', '.join(registry)}"]
    return []


def check_params(where: str, entry: dict, name_key: str, params: tuple[Param, ...]) -> list[str]:
    errors = []
    declared = {p.name: p for p in params}
    for key in entry:
        if key != name_key and key not in declared:
            errors.append(
                f"{where}.{key}: not a parameter of {entry[name_key]!r}; accepted: "
                + (", ".join(declared) or "no parameters")
            )
    for p in params:
        if p.name not in entry:
            if p.default is None:
                errors.append(f"{where}.{p.name}: missing; accepted: {p.accepted()} ({p.doc})")
            continue
        values = entry[p.name] if isinstance(entry[p.name], list) else [entry[p.name]]
        for v in values:
            problem = p.check(v)
            if problem:
                errors.append(f"{where}.{p.name}: {problem}")
    return errors


def entries(value: Any, of: type) -> list[tuple[int, Any]]:
    """(index, item) of a list's items of type ``of``; the schema reports anything else."""
    return (
        [(i, v) for i, v in enumerate(value) if isinstance(v, of)]
        if isinstance(value, list)
        else []
    )


def check_entry(where: str, entry: dict, name_key: str, registry) -> list[str]:
    """A registry entry's spec (``{name_key: <name>, <param>: <value or list>, ...}``): a
    known name and acceptable parameters."""
    if not isinstance(entry.get(name_key), str):
        return []  # the schema reports it
    if entry[name_key] not in registry:
        return choice_errors(f"{where}.{name_key}", entry[name_key], registry)
    return check_params(where, entry, name_key, registry.get(entry[name_key]).params)
