"""Config validation and grid expansion. Light: the Snakefile imports this at parse time.

``validate_config`` loads the study kinds (built-in, and any modules the config's
``study_kinds`` names), checks a config against workflow/schemas/config.schema.yaml merged with
each study's kind's own schema (filling defaults), then against the registries (models,
datasets, noise kinds, optimizers and their lr schedules, objectives) and the kind's own checks,
collecting every problem into one ``ConfigError`` that names each key at fault and what would be
accepted. ``expand_runs`` turns a study into its runs (the kind's ``expand``: by default
``corruptlab.core.grid.grid_runs``, model x noise x optimizer x objective x batch size x epochs x
seed); each run is a plain dict that reaches the rules through ``params:``.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from corruptlab import studies as study_kinds
from corruptlab.core.checks import check_entry, check_params, choice_errors, entries
from corruptlab.core.grid import as_list
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS
from corruptlab.data.noise import NOISE
from corruptlab.eval.adaptation import METHOD_PARAMS, METHODS
from corruptlab.studies import STUDIES
from corruptlab.train.models import MODELS
from corruptlab.train.objectives import OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is invalid; the message lists every problem, one per line."""


@cache
def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def _validator():
    import jsonschema

    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = _copy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    # JSON Schema counts 3.0 as an integer; a config value used as a count must be a real int
    integers = base.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return jsonschema.validators.extend(base, {"properties": set_defaults}, type_checker=integers)


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


# Keys whose values are names out of a registry, by their key path with list indices and study
# names left out (a study's "kind" is ("studies", "kind"), a noise spec's ("noise", "kind")).
def _registries() -> dict[tuple[str, ...], Any]:
    return {
        ("studies", "kind"): STUDIES,
        ("studies", "dataset"): DATASETS,
        ("studies", "models"): MODELS,
        ("studies", "baseline_model"): MODELS,
        ("noise", "kind"): NOISE,
        ("optimizers", "name"): OPTIMIZERS,
        ("schedule", "name"): SCHEDULES,
        ("objective", "name"): OBJECTIVES,
        ("evaluation", "corruptions"): CORRUPTIONS,
        ("methods", "name"): METHODS,
    }


def _registry(path: list) -> Any:
    keys = [p for p in path if isinstance(p, str)]
    if len(keys) >= 3 and keys[0] == "studies":  # studies.<name>.key...: the name goes
        keys = ["studies", *keys[2:]]
    return _registries().get(tuple(keys[-2:]))


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


# validators whose message becomes "<key>: got <value>; accepted: <what the schema allows>"
GOT_ACCEPTED = (
    *("type", "minimum", "maximum", "exclusiveMinimum", "minItems", "pattern", "enum"),
    *("uniqueItems", "minProperties"),
)


def _schema_message(error, prefix: list | None = None) -> str:
    path = [*(prefix or []), *error.absolute_path]
    where = _where(path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        message = f"{where}: unknown key(s) {', '.join(map(repr, extra))}; accepted: {allowed}"
        owners = []  # a key of other study kinds, in a study of this one
        for key in extra if prefix and len(error.absolute_path) == 0 else []:
            kinds = [repr(name) for name, kind in STUDIES.items() if key in kind.schema]
            if kinds:
                which = " and ".join(
                    [", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds
                )
                owners.append(f"{key!r} is a key of study kind{'s' * (len(kinds) > 1)} {which}")
        return message + (f" ({'; '.join(owners)})" if owners else "")
    if error.validator == "propertyNames" or "propertyNames" in error.schema_path:
        return (
            f"{where}: study name {error.instance!r} is not accepted; a name starts with a "
            "letter and has only letters, digits and '_' (it becomes a directory name)"
        )
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        key = missing[0] if missing else error.message.split("'")[1]
        sub = error.schema.get("properties", {}).get(key)
        if sub is None:  # a registry parameter (e.g. an optimizer's lr): a number or a list
            sub = error.schema.get("additionalProperties") or {}
        accepted = _describe(sub, [*path, key]) if isinstance(sub, dict) and sub else "a value"
        desc = sub.get("description") if isinstance(sub, dict) else None
        return f"{_where([*path, key])}: missing; accepted: {accepted}" + (
            f" ({desc})" if desc else ""
        )
    desc = error.schema.get("description")
    hint = f" ({desc})" if desc else ""
    texts = error.instance if isinstance(error.instance, list) else [error.instance]
    if any(isinstance(t, str) for t in texts) and _wants_number(error.schema):
        hint += f"; {HOW_TO_WRITE_NUMBERS}"
    if error.validator == "oneOf":
        options = " or ".join(_describe(s, path) for s in error.validator_value)
        return f"{where}: got {error.instance!r}; accepted: {options}{hint}"
    if error.validator in GOT_ACCEPTED:
        return f"{where}: got {error.instance!r}; accepted: {_describe(error.schema, path)}{hint}"
    return f"{where}: {error.message}{hint}"


def _wants_number(schema: dict) -> bool:
    if "$ref" in schema:
        return _wants_number(_schema()["$defs"][schema["$ref"].rsplit("/", 1)[1]])
    if "oneOf" in schema:
        return any(_wants_number(s) for s in schema["oneOf"])
    if schema.get("type") == "array":
        return _wants_number(schema.get("items", {}))
    return schema.get("type") in ("number", "integer")


def _describe(schema: dict, path: list | None = None) -> str:
    if "$ref" in schema:
        return _describe(_schema()["$defs"][schema["$ref"].rsplit("/", 1)[1]], path)
    if "oneOf" in schema:
        return " or ".join(_describe(s, path) for s in schema["oneOf"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    registry = _registry(path or [])
    kind = schema.get("type", "value")
    if kind == "string" and registry is not None:
        return f"one of {', '.join(registry)}"
    bounds = [f">= {schema['minimum']}"] if "minimum" in schema else []
    bounds += [f"> {schema['exclusiveMinimum']}"] if "exclusiveMinimum" in schema else []
    bounds += [f"<= {schema['maximum']}"] if "maximum" in schema else []
    bound = f" {' and '.join(bounds)}" if bounds else ""
    if kind == "array":
        items = schema.get("items", {})
        size = "a non-empty list" if schema.get("minItems", 0) >= 1 else "a list"
        size += " of distinct" if schema.get("uniqueItems") else " of"
        if registry is not None:
            return f"{size} names out of {', '.join(registry)}"
        item = {"object": "mapping"}.get(items.get("type"), items.get("type", "value")) + "s"
        item += f" matching {items['pattern']!r}" if "pattern" in items else ""
        ib = [f">= {items['minimum']}"] if "minimum" in items else []
        ib += [f"<= {items['maximum']}"] if "maximum" in items else []
        return f"{size} {item}" + (f" each {' and '.join(ib)}" if ib else "")
    if kind == "object":
        least = schema.get("minProperties", 0)
        return (
            f"a mapping with at least {least} entr{'y' if least == 1 else 'ies'}"
            if least
            else "a mapping"
        )
    if kind == "string" and "pattern" in schema:
        return f"a string matching {schema['pattern']!r}"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}{bound}"


# A number in exponent notation. YAML 1.1 (PyYAML, which Snakemake reads configs with) takes
# `1e-3`, `5E-4` and `1.0e3` for strings: a float needs a dot and a signed exponent there.
EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
HOW_TO_WRITE_NUMBERS = "write a number without quotes, e.g. 0.001, 1e-3 or 1.0e-3"


def coerce_numbers(value: Any) -> Any:
    """``value`` with every string that is a number in exponent notation (``'1e-3'``) replaced
    by its float, in place in dicts and lists (keys are left alone): the number a researcher
    wrote, as YAML 1.2 and JSON read it. No config key takes such a string as a name."""
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = coerce_numbers(item)
    elif isinstance(value, list):
        value[:] = [coerce_numbers(item) for item in value]
    elif isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place (numbers in exponent notation read as floats, defaults
    filled) and return it; raise ``ConfigError``."""
    coerce_numbers(config)
    top = _copy(_schema())
    top["properties"]["studies"]["additionalProperties"] = {"type": "object"}
    errors = [_schema_message(e) for e in _validator()(top).iter_errors(config)]
    errors += _load_kinds(config.get("study_kinds"))
    studies = config.get("studies")
    for name, study in studies.items() if isinstance(studies, dict) else []:
        if not isinstance(study, dict):
            continue
        where = f"studies.{name}"
        found = [_schema_message(e, ["studies", name]) for e in _study_errors(study)]
        said = {e.split(": ", 1)[0] for e in found}  # key paths the schema already reported
        errors += found + [e for e in _check_study(where, study) if e.split(": ", 1)[0] not in said]
    if not errors:
        for name, study in studies.items():
            ids = Counter(r["run_id"] for r in expand_runs(name, study, config))
            dupes = sorted(i for i, n in ids.items() if n > 1)
            if dupes:
                errors.append(f"studies.{name}: the grid repeats runs: {', '.join(dupes[:5])}")
    if errors:
        raise ConfigError(
            "invalid config (see config/README.md):\n" + "\n".join(f"  - {e}" for e in errors)
        )
    return config


def _load_kinds(modules: Any) -> list[str]:
    """Import the built-in study kinds and the config's ``study_kinds`` modules."""
    study_kinds.load()
    errors = []
    for i, spec in entries(modules, str):
        try:
            study_kinds.load_module(spec)
        except Exception as err:  # noqa: BLE001 (any failure of the user's module is reported)
            errors.append(
                f"study_kinds[{i}]: cannot load {spec!r} ({type(err).__name__}: {err}); "
                "accepted: an importable module name or a path to a .py file"
            )
    return errors


def study_schema(kind: str | None) -> dict:
    """The JSON schema of a study of ``kind``: the common study keys and the kind's own."""
    base = _copy(_schema()["$defs"]["study"])
    if kind in STUDIES:
        base["properties"].update(_copy(STUDIES.get(kind).schema))
    return base


def _study_errors(study: dict):
    kind = study.get("kind") if isinstance(study.get("kind"), str) else None
    schema = {"$defs": _schema()["$defs"], **study_schema(kind)}
    return _validator()(schema).iter_errors(study)


def _check_study(where: str, study: dict) -> list[str]:
    """Registry checks; tolerant of values the schema already rejected (so that every problem
    of a config is reported in one go)."""
    errors = []
    for key, registry in (("kind", STUDIES), ("dataset", DATASETS)):
        if isinstance(study.get(key), str):
            errors += choice_errors(f"{where}.{key}", study[key], registry)
    for i, model in entries(study.get("models"), str):
        errors += choice_errors(f"{where}.models[{i}]", model, MODELS)
    for i, spec in entries(study.get("noise"), dict):
        errors += check_entry(f"{where}.noise[{i}]", spec, "kind", NOISE)
    for i, spec in entries(study.get("optimizers"), dict):
        w = f"{where}.optimizers[{i}]"
        optimizer = {k: v for k, v in spec.items() if k != "schedule"}
        errors += check_entry(w, optimizer, "name", OPTIMIZERS)
        if isinstance(spec.get("schedule"), dict):
            errors += check_entry(f"{w}.schedule", spec["schedule"], "name", SCHEDULES)
    errors += _check_objective(where, study)
    evaluation = study.get("evaluation") if isinstance(study.get("evaluation"), dict) else {}
    for i, name in entries(evaluation.get("corruptions"), str):
        errors += choice_errors(f"{where}.evaluation.corruptions[{i}]", name, CORRUPTIONS)
    for i, spec in entries(evaluation.get("methods"), dict):
        w = f"{where}.evaluation.methods[{i}]"
        if isinstance(spec.get("name"), str):
            if spec["name"] not in METHODS:
                errors += choice_errors(f"{w}.name", spec["name"], METHODS)
            else:
                errors += check_params(w, spec, "name", METHOD_PARAMS[spec["name"]])
    errors += _check_classes(where, study)
    errors += _check_colour(where, study)
    train = study.get("train") if isinstance(study.get("train"), dict) else {}
    per_job, packing = train.get("seeds_per_job"), train.get("packing", "sequential")
    random_models = [
        m for _, m in entries(study.get("models"), str) if m in MODELS and MODELS.get(m).stochastic
    ]
    if isinstance(per_job, int) and per_job > 1 and packing == "vmap" and random_models:
        errors.append(
            f"{where}.train.packing: vmap with seeds_per_job {per_job}, but "
            f"{', '.join(random_models)} has dropout, whose draws would differ when seeds are "
            "trained together; accepted: packing sequential (or seeds_per_job 1) for a study "
            "with such a model"
        )
    kind = STUDIES.get(study["kind"]) if study.get("kind") in STUDIES else None
    patience, max_epochs = study.get("patience"), study.get("max_epochs")
    epochs = [e for _, e in entries(as_list(max_epochs), int)]
    uses_patience = kind is None or kind.uses_patience  # else its runs train every epoch
    if isinstance(patience, int) and epochs and 1 <= min(epochs) < patience and uses_patience:
        errors.append(
            f"{where}.patience: {patience} exceeds max_epochs {min(epochs)}; "
            "accepted: an integer in [1, max_epochs]"
        )
    if kind is not None:
        errors += kind.check(where, study)
    return errors


def _check_objective(where: str, study: dict) -> list[str]:
    spec = study.get("objective")
    if not isinstance(spec, dict):
        return []
    errors = check_entry(f"{where}.objective", spec, "name", OBJECTIVES)
    name, kind = spec.get("name"), study.get("kind")
    if name not in OBJECTIVES or kind not in STUDIES or not OBJECTIVES.get(name).soft_targets:
        return errors
    if not STUDIES.get(kind).soft_targets:
        providers = [k for k in STUDIES if STUDIES.get(k).soft_targets]
        hard = [n for n in OBJECTIVES if not OBJECTIVES.get(n).soft_targets]
        where_else = (
            f", or a study of kind {' or '.join(map(repr, providers))} (which gives its "
            "runs soft targets and sets their objective itself)"
            if providers
            else " (no study kind provides soft targets yet; a distillation study kind will)"
        )
        errors.append(
            f"{where}.objective.name: {name!r} trains on soft targets (a teacher's logits for "
            f"every training example), which the runs of a {kind!r} study do not have; "
            f"accepted: {', '.join(hard)}{where_else}"
        )
    return errors


def _check_colour(where: str, study: dict) -> list[str]:
    """Corrupted test sets and OOD sets are made of grey images: refused for a colour dataset."""
    dataset = DATASETS.get(study["dataset"]) if study.get("dataset") in DATASETS else None
    if dataset is None or dataset.grey:
        return []
    errors = []
    for section, keys in (("evaluation", ("corruptions",)), ("ood", ("synthetic", "corruptions",
                                                                      "datasets"))):  # fmt: skip
        spec = study.get(section) if isinstance(study.get(section), dict) else {}
        for key in keys:
            if spec.get(key):
                errors.append(
                    f"{where}.{section}.{key}: the corrupted and OOD test sets are made of grey "
                    f"images, and {dataset.name!r} is a colour dataset; accepted: no "
                    f"{section}.{key} with a colour dataset"
                )
    return errors


def _check_classes(where: str, study: dict) -> list[str]:
    classes = study.get("in_classes")
    dataset = DATASETS.get(study["dataset"]) if study.get("dataset") in DATASETS else None
    if not isinstance(classes, list) or dataset is None:
        return []
    n = dataset.n_classes
    bad = [c for c in classes if isinstance(c, int) and c >= n]
    if bad:
        return [
            f"{where}.in_classes: {bad} are not classes of {dataset.name!r}; "
            f"accepted: distinct integers in 0..{n - 1}"
        ]
    if len(set(classes)) >= n:
        return [
            f"{where}.in_classes: every class of {dataset.name!r} is listed; accepted: a "
            f"proper subset of 0..{n - 1} (the others are held out)"
        ]
    return []


def expand_runs(study_name: str, study: dict, config: dict) -> list[dict]:
    """Every run of a (validated) study, in a stable order: its kind's expansion."""
    return STUDIES.get(study["kind"]).expand(study_name, study, config)
