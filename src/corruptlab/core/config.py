"""Config validation and grid expansion. Light: the Snakefile imports this at parse time.

``validate_config`` checks a config against workflow/schemas/config.schema.yaml (filling its
defaults) and then against the registries (models, datasets, noise kinds, optimizers and their
lr schedules, objectives, study kinds), collecting every problem into one ``ConfigError`` that
names each key at fault and what would be accepted. ``expand_runs`` turns a study into its runs
(model x noise x optimizer x objective x batch size x seed); each run is a plain dict that
reaches the rules through ``params:``.
"""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path
from typing import Any

from corruptlab.core.params import Param, fmt_number
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS
from corruptlab.data.noise import NOISE
from corruptlab.eval.adaptation import METHOD_PARAMS, METHODS
from corruptlab.eval.ood import OOD_SETS, SCORES
from corruptlab.studies import STUDIES
from corruptlab.train.models import MODELS, RANDOM_LAYERS
from corruptlab.train.objectives import DEFAULT_OBJECTIVE, OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import DEFAULT_SCHEDULE, SCHEDULES

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


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _schema_message(error) -> str:
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{where}: unknown key(s) {', '.join(map(repr, extra))}; accepted: {allowed}"
    if error.validator == "propertyNames":
        return (
            f"{where}: study name {error.instance!r} is not accepted; a name starts with a "
            "letter and has only letters, digits and '_' (it becomes a directory name)"
        )
    if error.validator == "required":
        return f"{where}: {error.message}"
    desc = error.schema.get("description")
    hint = f" ({desc})" if desc else ""
    if error.validator == "oneOf":
        options = " or ".join(_describe(s) for s in error.validator_value)
        return f"{where}: got {error.instance!r}; accepted: {options}{hint}"
    return f"{where}: {error.message}{hint}"


def _describe(schema: dict) -> str:
    if "$ref" in schema:
        return _describe(_schema()["$defs"][schema["$ref"].rsplit("/", 1)[1]])
    if "oneOf" in schema:
        return " or ".join(_describe(s) for s in schema["oneOf"])
    kind = schema.get("type", "value")
    bound = f" >= {schema['minimum']}" if "minimum" in schema else ""
    if kind == "array":
        items = schema.get("items", {})
        return f"a non-empty list of {items.get('type', 'value')}s" + (
            f" each >= {items['minimum']}" if "minimum" in items else ""
        )
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}{bound}"


def validate_config(config: dict) -> dict:
    """Validate ``config`` in place (filling defaults) and return it; raise ``ConfigError``."""
    schema_errors = list(_validator()(_schema()).iter_errors(config))
    errors = [_schema_message(e) for e in schema_errors]
    studies = config.get("studies")
    said = {e.split(": ", 1)[0] for e in errors}  # key paths the schema already reported
    for name, study in studies.items() if isinstance(studies, dict) else []:
        if isinstance(study, dict):
            more = _check_study(f"studies.{name}", study)
            errors += [e for e in more if e.split(": ", 1)[0] not in said]
    if not errors:
        for name, study in studies.items():
            ids = [r["run_id"] for r in expand_runs(name, study, config)]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                errors.append(f"studies.{name}: the grid repeats runs: {', '.join(dupes[:5])}")
    if errors:
        raise ConfigError(
            "invalid config (see config/README.md):\n" + "\n".join(f"  - {e}" for e in errors)
        )
    return config


def _choice(where: str, value: str, registry) -> list[str]:
    if value not in registry:
        return [f"{where}: unknown {registry.kind} {value!r}; accepted: {', '.join(registry)}"]
    return []


def _check_params(where: str, entry: dict, name_key: str, params: tuple[Param, ...]) -> list[str]:
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
                errors.append(f"{where}: missing {p.name!r} ({p.doc}; {p.accepted()})")
            continue
        values = entry[p.name] if isinstance(entry[p.name], list) else [entry[p.name]]
        for v in values:
            problem = p.check(v)
            if problem:
                errors.append(f"{where}.{p.name}: {problem}")
    return errors


def _check_entry(where: str, entry: dict, name_key: str, registry) -> list[str]:
    """A registry entry's spec (``{name_key: <name>, <param>: <value or list>, ...}``): a
    known name and acceptable parameters."""
    if not isinstance(entry.get(name_key), str):
        return []  # the schema reports it
    if entry[name_key] not in registry:
        return _choice(f"{where}.{name_key}", entry[name_key], registry)
    return _check_params(where, entry, name_key, registry.get(entry[name_key]).params)


def _entries(value: Any, of: type) -> list[tuple[int, Any]]:
    """(index, item) of a list's items of type ``of``; the schema reports anything else."""
    return (
        [(i, v) for i, v in enumerate(value) if isinstance(v, of)]
        if isinstance(value, list)
        else []
    )


def _check_study(where: str, study: dict) -> list[str]:
    """Registry checks; tolerant of values the schema already rejected (so that every problem
    of a config is reported in one go)."""
    errors = []
    for key, registry in (("kind", STUDIES), ("dataset", DATASETS)):
        if isinstance(study.get(key), str):
            errors += _choice(f"{where}.{key}", study[key], registry)
    for i, model in _entries(study.get("models"), str):
        errors += _choice(f"{where}.models[{i}]", model, MODELS)
    for i, spec in _entries(study.get("noise"), dict):
        errors += _check_entry(f"{where}.noise[{i}]", spec, "kind", NOISE)
    for i, spec in _entries(study.get("optimizers"), dict):
        w = f"{where}.optimizers[{i}]"
        optimizer = {k: v for k, v in spec.items() if k != "schedule"}
        errors += _check_entry(w, optimizer, "name", OPTIMIZERS)
        if isinstance(spec.get("schedule"), dict):
            errors += _check_entry(f"{w}.schedule", spec["schedule"], "name", SCHEDULES)
    errors += _check_objective(where, study)
    baseline, models = study.get("baseline_model"), study.get("models")
    if isinstance(baseline, str) and isinstance(models, list) and baseline not in models:
        errors.append(
            f"{where}.baseline_model: {baseline!r} is not one of the study's models; "
            f"accepted: {', '.join(map(str, models))}"
        )
    evaluation = study.get("evaluation") if isinstance(study.get("evaluation"), dict) else {}
    for i, name in _entries(evaluation.get("corruptions"), str):
        errors += _choice(f"{where}.evaluation.corruptions[{i}]", name, CORRUPTIONS)
    for i, spec in _entries(evaluation.get("methods"), dict):
        w = f"{where}.evaluation.methods[{i}]"
        if isinstance(spec.get("name"), str):
            if spec["name"] not in METHODS:
                errors += _choice(f"{w}.name", spec["name"], METHODS)
            else:
                errors += _check_params(w, spec, "name", METHOD_PARAMS[spec["name"]])
    errors += _check_ood(where, study)
    train = study.get("train") if isinstance(study.get("train"), dict) else {}
    per_job, packing = train.get("seeds_per_job"), train.get("packing", "sequential")
    random_models = [m for _, m in _entries(study.get("models"), str) if m in RANDOM_LAYERS]
    if isinstance(per_job, int) and per_job > 1 and packing == "vmap" and random_models:
        errors.append(
            f"{where}.train.packing: vmap with seeds_per_job {per_job}, but "
            f"{', '.join(random_models)} has dropout, whose draws would differ when seeds are "
            "trained together; accepted: packing sequential (or seeds_per_job 1) for a study "
            "with such a model"
        )
    patience, max_epochs = study.get("patience"), study.get("max_epochs")
    epochs = [e for _, e in _entries(as_list(max_epochs), int)]
    ignored = study.get("kind") == "memorization"  # its runs train every epoch
    if isinstance(patience, int) and epochs and 1 <= min(epochs) < patience and not ignored:
        errors.append(
            f"{where}.patience: {patience} exceeds max_epochs {min(epochs)}; "
            "accepted: an integer in [1, max_epochs]"
        )
    errors += _check_memorization(where, study, epochs)
    return errors


def _check_objective(where: str, study: dict) -> list[str]:
    spec = study.get("objective")
    if not isinstance(spec, dict):
        return []
    errors = _check_entry(f"{where}.objective", spec, "name", OBJECTIVES)
    name, kind = spec.get("name"), study.get("kind")
    if name not in OBJECTIVES or kind not in STUDIES or not OBJECTIVES.get(name).soft_targets:
        return errors
    if not STUDIES.get(kind).soft_targets:
        providers = [k for k in STUDIES if STUDIES.get(k).soft_targets]
        hard = [n for n in OBJECTIVES if not OBJECTIVES.get(n).soft_targets]
        where_else = (
            f", or {name!r} in a study of kind {' or '.join(map(repr, providers))}"
            if providers
            else " (no study kind provides soft targets yet; a distillation study kind will)"
        )
        errors.append(
            f"{where}.objective.name: {name!r} trains on soft targets (a teacher's logits for "
            f"every training example), which the runs of a {kind!r} study do not have; "
            f"accepted: {', '.join(hard)}{where_else}"
        )
    return errors


def _check_memorization(where: str, study: dict, epochs: list[int]) -> list[str]:
    mem = study.get("memorization")
    if not isinstance(mem, dict) or study.get("kind") != "memorization":
        return []  # other kinds ignore the section
    late = [e for _, e in _entries(mem.get("csr_epochs"), int) if epochs and e > max(epochs)]
    if late:
        return [
            f"{where}.memorization.csr_epochs: {late} beyond max_epochs {max(epochs)}; "
            "accepted: epochs in 0..max_epochs"
        ]
    return []


def _check_ood(where: str, study: dict) -> list[str]:
    errors = []
    ood = study.get("ood") if isinstance(study.get("ood"), dict) else {}
    for key, registry in (
        ("synthetic", OOD_SETS),
        ("corruptions", CORRUPTIONS),
        ("datasets", DATASETS),
        ("scores", SCORES),
    ):
        for i, name in _entries(ood.get(key), str):
            errors += _choice(f"{where}.ood.{key}[{i}]", name, registry)
            if key == "datasets" and name == study.get("dataset"):
                errors.append(
                    f"{where}.ood.{key}[{i}]: {name!r} is the study's own dataset; "
                    f"accepted: another dataset ({', '.join(n for n in DATASETS if n != name)})"
                )
    classes = study.get("in_classes")
    dataset = DATASETS.get(study["dataset"]) if study.get("dataset") in DATASETS else None
    if isinstance(classes, list) and dataset is not None:
        n = dataset.n_classes
        bad = [c for c in classes if isinstance(c, int) and c >= n]
        if bad:
            errors.append(
                f"{where}.in_classes: {bad} are not classes of {dataset.name!r}; "
                f"accepted: distinct integers in 0..{n - 1}"
            )
        elif len(set(classes)) >= n:
            errors.append(
                f"{where}.in_classes: every class of {dataset.name!r} is listed; accepted: a "
                f"proper subset of 0..{n - 1} (the others are held out)"
            )
    sets = [ood.get(k) for k in ("synthetic", "corruptions", "datasets")]
    has_sets = any(isinstance(v, list) and v for v in sets) or bool(classes)
    if study.get("kind") == "ood" and not has_sets:
        errors.append(
            f"{where}.ood: an ood study needs at least one OOD set; accepted: names in "
            "ood.synthetic, ood.corruptions or ood.datasets, or in_classes (held-out classes)"
        )
    if study.get("kind") not in ("ood", None) and any(isinstance(v, list) and v for v in sets):
        errors.append(
            f"{where}.ood: OOD sets are scored only by studies of kind 'ood' "
            f"(this study is {study.get('kind')!r}); accepted: kind: ood, or no ood section"
        )
    return errors


def _grid(entry: dict, name_key: str, params: tuple[Param, ...]) -> list[dict]:
    """Expand list-valued parameters into the product of their values (declared order)."""
    lists = [
        entry.get(p.name, p.default)
        if isinstance(entry.get(p.name), list)
        else [entry.get(p.name, p.default)]
        for p in params
    ]
    return [
        {
            name_key: entry[name_key],
            **{p.name: p.kind(v) for p, v in zip(params, combo, strict=True)},
        }
        for combo in itertools.product(*lists)
    ]


def seed_list(seeds: int | list[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def seed_packs(study: dict) -> list[list[int]]:
    """The seeds each training job of a (validated) study trains together, in chunks of
    ``train.seeds_per_job`` of the sorted seeds; [] when every run is a job of its own."""
    per_job = study.get("train", {}).get("seeds_per_job", 1)
    if per_job == 1:
        return []
    seeds = sorted(seed_list(study["seeds"]))
    return [seeds[i : i + per_job] for i in range(0, len(seeds), per_job)]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def optimizer_grid(spec: dict) -> list[dict]:
    """A (validated) optimizer spec's settings: its list-valued parameters expanded, then its
    lr schedule's. A setting carries ``schedule`` only when it is not ``constant``, so that runs
    without a schedule keep the run dicts (and paths) they always had."""
    settings = _grid(spec, "name", OPTIMIZERS.get(spec["name"]).params)
    schedule = spec.get("schedule", DEFAULT_SCHEDULE)
    schedules = _grid(schedule, "name", SCHEDULES.get(schedule["name"]).params)
    return [
        o if s["name"] == DEFAULT_SCHEDULE["name"] else {**o, "schedule": s}
        for o in settings
        for s in schedules
    ]


def objective_grid(study: dict) -> list[dict]:
    """A (validated) study's objective settings, list-valued parameters expanded (the default:
    cross-entropy)."""
    spec = study.get("objective", DEFAULT_OBJECTIVE)
    return _grid(spec, "name", OBJECTIVES.get(spec["name"]).params)


def optimizer_slug(optim: dict, objective: dict | None = None) -> str:
    """The optimizer part of a run path, before ``-bs``: the optimizer's slug, then a
    non-constant schedule's (``adadelta-lr1-wd0-step-g0.7``) and a non-default objective's
    (``-kd-t4-a0.5``)."""
    out = OPTIMIZERS.get(optim["name"]).slug(optim)
    if "schedule" in optim:
        out += "-" + SCHEDULES.get(optim["schedule"]["name"]).slug(optim["schedule"])
    if objective is not None and objective["name"] != DEFAULT_OBJECTIVE["name"]:
        out += "-" + OBJECTIVES.get(objective["name"]).slug(objective)
    return out


def expand_runs(study_name: str, study: dict, config: dict) -> list[dict]:
    """Every run of a (validated) study, in a stable order."""
    noises = [
        n for spec in study["noise"] for n in _grid(spec, "kind", NOISE.get(spec["kind"]).params)
    ]
    optims = [o for spec in study["optimizers"] for o in optimizer_grid(spec)]
    runs = []
    epoch_grid = isinstance(study["max_epochs"], list)  # then run paths name the epochs
    memorization = study["kind"] == "memorization"
    for model, noise, optim, objective, bs, epochs, seed in itertools.product(
        study["models"],
        noises,
        optims,
        objective_grid(study),
        as_list(study["batch_size"]),
        as_list(study["max_epochs"]),
        seed_list(study["seeds"]),
    ):
        noise_slug = NOISE.get(noise["kind"]).slug(noise)
        optim_slug = f"{optimizer_slug(optim, objective)}-bs{fmt_number(bs)}"
        if epoch_grid:
            optim_slug += f"-e{epochs}"
        runs.append(
            {
                "study": study_name,
                "kind": study["kind"],
                "dataset": study["dataset"],
                "split_seed": config["data"]["split_seed"],
                "model": model,
                "noise": noise,
                "noise_slug": noise_slug,
                "optimizer": optim,
                "optim_slug": optim_slug,
                "batch_size": bs,
                "max_epochs": epochs,
                # memorization runs train every epoch and keep the last weights
                "patience": epochs if memorization else study["patience"],
                "seed": seed,
                "device": config["device"],
                "run_id": f"{model}/{noise_slug}/{optim_slug}/seed{seed}",
            }
        )
        if objective["name"] != DEFAULT_OBJECTIVE["name"]:  # the default leaves run dicts be
            runs[-1]["objective"] = objective
        if study.get("in_classes"):  # only when set: runs of other studies keep their params
            runs[-1]["in_classes"] = sorted(study["in_classes"])
        if memorization:
            runs[-1].update(memorization_params(study, epochs))
    return runs


def memorization_params(study: dict, epochs: int) -> dict:
    """What a memorization run adds to its run dict: the shared data seed, the last weights
    instead of the best, and the critical-sample-ratio measurements (``csr``)."""
    mem = study["memorization"]
    csr_epochs = sorted(e for e in mem["csr_epochs"] if e <= epochs)
    params: dict[str, Any] = {"data_seed": mem["data_seed"], "restore_best": False}
    if csr_epochs:
        params["csr"] = {
            "epochs": csr_epochs,
            "n": mem["csr_examples"],
            "radius": mem["csr_radius"],
            "alpha": mem["csr_alpha"],
            "beta": mem["csr_beta"],
            "steps": mem["csr_steps"],
        }
    return params


def eval_methods(study: dict) -> list[dict]:
    """The (validated) study's test-time adaptation methods, list-valued parameters expanded."""
    return [
        m
        for spec in study["evaluation"]["methods"]
        for m in _grid(spec, "name", METHOD_PARAMS[spec["name"]])
    ]


def ood_sets(study: dict) -> list[dict]:
    """The (validated) ood study's OOD sets as corruptlab.eval.evaluation.load_ood_set specs
    (without file paths, which the workflow adds)."""
    ood = study["ood"]
    sets = [{"family": "synthetic", "name": n} for n in ood["synthetic"]]
    sets += [
        {"family": "corruption", "name": n, "severity": ood["severity"]} for n in ood["corruptions"]
    ]
    sets += [{"family": "dataset", "name": n} for n in ood["datasets"]]
    if study.get("in_classes"):
        sets.append({"family": "held_out", "name": "held_out_classes"})
    return sets


def noise_specs(runs: list[dict]) -> dict[str, dict]:
    """The distinct label-noise specs of a study's runs, by slug."""
    return {r["noise_slug"]: r["noise"] for r in runs}
