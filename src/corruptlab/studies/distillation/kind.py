"""Study kind ``distillation``: Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a
Neural Network" (issue 17), with the paper's "mythical 3", its 7s-and-8s transfer set, and
teachers trained on noisy labels.

Runs are a graph: teacher runs -> their logits on the training split (``train_logits.npy``,
written once per teacher by the ``soft_targets`` rule) -> student runs, which name that file in
their ``inputs`` (corruptlab.core.runs), so that retraining a teacher retrains its students and
nothing else.

- Teachers: ``teachers`` entries, each models x noise settings x optimizer settings (the
  entry's or the study's) x seeds, trained with cross-entropy on their (noisy) labels.
- Students: the study's ``models`` x transfer sets (``transfer_sets``: the whole training set,
  or without some classes, ``omit``, or with only some, ``keep``; each with its label noise,
  the entry's ``noise`` or the study's) x (a hard-label baseline, and every teacher with the
  same noise setting as the transfer set, or every teacher with ``distillation.teacher_noise:
  any``, at each temperature T and weight alpha of the soft term) x seeds. Student seed k
  learns from teacher seed k. Every student may take the same number of optimizer steps
  (``student_steps``; by default those of ``max_epochs`` passes over the whole training set),
  so a student on a smaller transfer set passes over it more often; one whose transfer set
  lacks classes trains all of them, without early stopping, and keeps its last weights.
- A student whose transfer set lacks classes is evaluated a second time with the logit bias of
  the omitted classes (or of the kept ones) shifted by the amount best on the validation split
  (corruptlab.eval.bias_shift): the paper tuned it on the test set.

Run paths: ``teacher/<model>/<noise>/<optimizer>-bs<batch>/seed<k>`` and
``student/<model>/<noise>/<transfer set>/<hard | from-<teacher>>/<optim>-bs<batch>/seed<k>``
(``<optim>`` ends in ``-kd-t<T>-a<alpha>`` for a distilled student; ``<teacher>``: the
teacher's configuration id without ``teacher/``, its segments joined by ``+``).
"""

from __future__ import annotations

import itertools

from corruptlab.core import runs as run_paths
from corruptlab.core.checks import check_entry, entries
from corruptlab.core.grid import (
    as_list,
    default_patience,
    expand_grid,
    optimizer_grid,
    optimizer_slug,
    seed_list,
)
from corruptlab.core.params import fmt_number
from corruptlab.data.noise import NOISE
from corruptlab.data.transfer import shifted_classes
from corruptlab.report.claims import claims_table
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.distillation.claims import (
    _distilled_beats_hard,
    _mythical_three,
    _noisy_teachers,
    _only_some,
    _paper_numbers,
    _teacher_learns,
    _teacher_not_worse,
)
from corruptlab.studies.distillation.figures import (
    errors_vs_temperature,
    noisy_teachers,
    unseen_class_accuracy,
)
from corruptlab.studies.distillation.tables import (
    ALL_CLASSES,
    SHIFT_PREFIX,
    STUDENT,
    TEACHER,
    errors,
    summary,
    teacher_tag,
)
from corruptlab.train.models import MODELS
from corruptlab.train.objectives import OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

HARD = "hard"  # the path segment (and teacher column) of a hard-label student
SOFT_TARGETS_FILE = run_paths.SOFT_TARGETS  # what the soft_targets rule writes in a run dir

SCHEMA = schema_beside(__file__)
NONE_NOISE = [{"kind": "none"}]


def _noise_settings(specs: list[dict]) -> list[dict]:
    return [n for spec in specs for n in expand_grid(spec, "kind", NOISE.get(spec["kind"]).params)]


def _noise_slug(noise: dict) -> str:
    return NOISE.get(noise["kind"]).slug(noise)


def _common(name: str, study: dict, config: dict, seed: int) -> dict:
    return {
        "study": name,
        "kind": study["kind"],
        "dataset": study["dataset"],
        "split_seed": config["data"]["split_seed"],
        "seed": seed,
        "device": config["device"],
    }


def teacher_configs(study: dict) -> list[dict]:
    """Each teacher configuration of a (validated) study: model, noise, optimizer setting, batch
    size, epochs, patience and its configuration id, in the listed order."""
    out = []
    for entry in study["teachers"]:
        optims = [
            o for s in entry.get("optimizers", study["optimizers"]) for o in optimizer_grid(s)
        ]
        batch = entry.get("batch_size", as_list(study["batch_size"])[0])
        epochs = entry.get("max_epochs", as_list(study["max_epochs"])[0])
        patience = entry.get("patience", study.get("patience", default_patience(epochs)))
        for model, noise, optim in itertools.product(
            entry["models"], _noise_settings(entry.get("noise", NONE_NOISE)), optims
        ):
            optim_slug = f"{optimizer_slug(optim)}-bs{fmt_number(batch)}"
            out.append(
                {
                    "model": model,
                    "noise": noise,
                    "noise_slug": _noise_slug(noise),
                    "optimizer": optim,
                    "optim_slug": optim_slug,
                    "batch_size": batch,
                    "max_epochs": epochs,
                    "patience": patience,
                    "config": run_paths.config_id(TEACHER, model, _noise_slug(noise), optim_slug),
                }
            )
    return out


def _objectives(study: dict, transfer: dict) -> list[dict]:
    d = study["distillation"]
    spec = {
        "name": "distillation",
        "temperature": transfer.get("temperature", d["temperature"]),
        "alpha": transfer.get("alpha", d["alpha"]),
    }
    return expand_grid(spec, "name", OBJECTIVES.get("distillation").params)


def _transfer_spec(entry: dict) -> dict:
    return {k: entry[k] for k in ("name", "omit", "keep") if k in entry}


def _columns(**values) -> dict:
    """The kind's own runs-table columns (corruptlab.report.tables.flatten_run)."""
    keys = ("role", "transfer_set", "teacher_run_id", "teacher_model", "teacher_noise")
    keys += ("kd_temperature", "kd_alpha")
    return {k: values.get(k) for k in keys}


def student_length(study: dict, transfer: dict) -> dict:
    """The run-dict keys that set how long a student on ``transfer`` trains
    (corruptlab.jobs.train.training_length): every student gets the study's ``student_steps``
    budget of optimizer steps, and one whose transfer set lacks classes trains all of it
    without early stopping and keeps its last weights (its validation split holds classes it
    never sees). None for a student on every class under the ``full_set`` budget: it trains
    its ``max_epochs`` with early stopping, as without the keys (its run dict, and so its
    job, stay as they were)."""
    budget = study["student_steps"]
    lacks = bool(shifted_classes(transfer))
    out = {}
    if lacks or budget != run_paths.FULL_SET_STEPS:
        out["step_budget"] = budget
    if lacks:
        out["early_stopping"] = False
    return out


def expand_distillation(name: str, study: dict, config: dict) -> list[dict]:
    """Teacher runs, then student runs (see the module docstring), each seed of a configuration
    in turn."""
    seeds = seed_list(study["seeds"])
    teachers = teacher_configs(study)
    out = []
    for t in teachers:
        for seed in seeds:
            run = {
                **_common(name, study, config, seed),
                **{k: t[k] for k in ("model", "noise", "noise_slug", "optimizer", "optim_slug")},
                **{k: t[k] for k in ("batch_size", "max_epochs", "patience")},
                "run_id": run_paths.run_id(t["config"], seed),
                "columns": _columns(role=TEACHER, transfer_set=ALL_CLASSES),
            }
            out.append(run)
    batch = as_list(study["batch_size"])[0]
    epochs = as_list(study["max_epochs"])[0]
    patience = study.get("patience", default_patience(epochs))
    optims = [o for s in study["optimizers"] for o in optimizer_grid(s)]
    d = study["distillation"]
    for model, entry in itertools.product(study["models"], study["transfer_sets"]):
        transfer = _transfer_spec(entry)
        length = student_length(study, entry)
        for noise, optim in itertools.product(
            _noise_settings(entry.get("noise", study["noise"])), optims
        ):
            slug = _noise_slug(noise)
            base = run_paths.config_id(STUDENT, model, slug, transfer["name"])
            variants = []  # (path segment, objective or None, teacher config or None)
            if d["hard_labels"]:
                variants.append((HARD, None, None))
            for t in teachers:
                if d["teacher_noise"] == "same" and t["noise_slug"] != slug:
                    continue
                variants += [(teacher_tag(t["config"]), o, t) for o in _objectives(study, entry)]
            for segment, objective, t in variants:
                optim_slug = f"{optimizer_slug(optim, objective)}-bs{fmt_number(batch)}"
                config_id = run_paths.config_id(base, segment, optim_slug)
                for seed in seeds:
                    run = {
                        **_common(name, study, config, seed),
                        "model": model,
                        "noise": noise,
                        "noise_slug": slug,
                        "optimizer": optim,
                        "optim_slug": optim_slug,
                        "batch_size": batch,
                        "max_epochs": epochs,
                        "patience": patience,
                        "run_id": run_paths.run_id(config_id, seed),
                        "transfer": transfer,
                        **length,
                    }
                    if t is None:
                        run["columns"] = _columns(role=STUDENT, transfer_set=transfer["name"])
                    else:
                        teacher_run = run_paths.run_id(t["config"], seed)
                        run["objective"] = objective
                        run["inputs"] = {"teacher": f"{teacher_run}/{SOFT_TARGETS_FILE}"}
                        run["columns"] = _columns(
                            role=STUDENT,
                            transfer_set=transfer["name"],
                            teacher_run_id=teacher_run,
                            teacher_model=t["model"],
                            teacher_noise=t["noise_slug"],
                            kd_temperature=objective["temperature"],
                            kd_alpha=objective["alpha"],
                        )
                    out.append(run)
    return out


def _has_noisy_teacher(study: dict) -> bool:
    return any(n["kind"] != "none" for t in study["teachers"] for n in t.get("noise", NONE_NOISE))


def _lacks_classes(study: dict) -> bool:
    return any(shifted_classes(t) for t in study["transfer_sets"])


def _has_whole_set(study: dict) -> bool:
    return any(not shifted_classes(t) for t in study["transfer_sets"])


class Distillation(StudyKind):
    name = "distillation"
    doc = (
        "issue 17: Hinton et al. 2015 knowledge distillation: teachers -> soft targets -> "
        "students, the mythical 3, only 7s and 8s, noisy teachers"
    )
    schema = SCHEMA
    soft_targets = True

    tables = {
        "errors": Output(errors, ("runs", "predictions")),
        "summary": Output(summary, ("errors",)),
        "claims": Output(claims_table, ("runs", "errors")),
    }
    figures = {
        "errors_vs_temperature": Output(errors_vs_temperature, ("errors",), when=_has_whole_set),
        "unseen_class_accuracy": Output(unseen_class_accuracy, ("errors",), when=_lacks_classes),
        "noisy_teachers": Output(noisy_teachers, ("errors",), when=_has_noisy_teacher),
    }
    claims = (
        _teacher_learns,
        _distilled_beats_hard,
        _teacher_not_worse,
        _mythical_three,
        _only_some,
        _noisy_teachers,
        _paper_numbers,
    )

    def eval_conditions(self, study: dict) -> list[dict]:
        """The clean test set once more per transfer set that lacks classes, with the bias of
        its omitted (or kept) classes shifted by the amount best on the validation split."""
        return [
            {
                "name": SHIFT_PREFIX + t["name"],
                "severity": 0,
                "family": "bias_shift",
                "classes": shifted_classes(t),
            }
            for t in study["transfer_sets"]
            if shifted_classes(t)
        ]

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        if "teachers" not in study:
            errors.append(
                f"{where}.teachers: missing; accepted: a non-empty list of teacher entries "
                "({models: [...], noise: [...], ...}; config/README.md)"
            )
        if "objective" in study:
            errors.append(
                f"{where}.objective: a distillation study sets its students' loss itself (keys "
                "distillation.temperature and distillation.alpha); accepted: no objective key"
            )
        if "in_classes" in study:
            errors.append(
                f"{where}.in_classes: a distillation study trains and tests on every class "
                "(transfer_sets[].omit / keep leave classes out of the students' training "
                "only); accepted: no in_classes key"
            )
        try:
            specs = [spec for _, spec in entries(study.get("optimizers"), dict)]
            optims = [o for spec in specs for o in optimizer_grid(spec)]
        except Exception:  # noqa: BLE001 (the schema's own check reports a malformed entry)
            optims = []
        if len(optims) > 1:
            slugs = [optimizer_slug(o) for o in optims]
            errors.append(
                f"{where}.optimizers: {len(optims)} settings for the students "
                f"({', '.join(slugs[:4])}{', ...' if len(slugs) > 4 else ''}), but the claims "
                "pair each distilled student with the hard-label student of its model and "
                "labels, which would pair across settings; accepted: one optimizer setting "
                "(one name and lr) for the students (teachers may set their own)"
            )
        # students on smaller transfer sets make more passes in the same step budget
        scaled = any(
            "omit" in t or "keep" in t for _, t in entries(study.get("transfer_sets"), dict)
        )
        for j, o in entries(study.get("optimizers"), dict):
            schedule = o.get("schedule")
            if scaled and isinstance(schedule, dict) and schedule.get("name") == "step":
                errors.append(
                    f"{where}.optimizers[{j}].schedule: step multiplies the students' lr by "
                    "gamma after every pass over their transfer set, and a student on a smaller "
                    "set makes more passes in the same step budget (student_steps); accepted: "
                    "constant or cosine (which anneals over each student's whole budget)"
                )
        for key in ("batch_size", "max_epochs"):
            if isinstance(study.get(key), list):
                errors.append(
                    f"{where}.{key}: got a list; accepted: one integer in a distillation study "
                    "(its students' value; teachers may set their own)"
                )
        noise_lists = [(f"{where}.noise", study.get("noise"))]
        for i, entry in entries(study.get("teachers"), dict):
            w = f"{where}.teachers[{i}]"
            for j, model in entries(entry.get("models"), str):
                if model not in MODELS:
                    errors.append(
                        f"{w}.models[{j}]: unknown model {model!r}; accepted: "
                        + ", ".join(MODELS.names())
                    )
                elif (
                    getattr(MODELS.get(model), "stochastic", False)
                    and study.get("train", {}).get("packing") == "vmap"
                ):
                    errors.append(
                        f"{where}.train.packing: vmap cannot train teacher {model!r} (it has "
                        "dropout); accepted: packing sequential"
                    )
            noise_lists.append((f"{w}.noise", entry.get("noise")))
            for j, o in entries(entry.get("optimizers"), dict):
                errors += check_entry(
                    f"{w}.optimizers[{j}]",
                    {k: v for k, v in o.items() if k != "schedule"},
                    "name",
                    OPTIMIZERS,
                )
                if isinstance(o.get("schedule"), dict):
                    errors += check_entry(
                        f"{w}.optimizers[{j}].schedule", o["schedule"], "name", SCHEDULES
                    )
        seen = {}
        for i, entry in entries(study.get("transfer_sets"), dict):
            w = f"{where}.transfer_sets[{i}]"
            if "omit" in entry and "keep" in entry:
                errors.append(f"{w}: omit and keep both set; accepted: one of them, or neither")
            noise_lists.append((f"{w}.noise", entry.get("noise")))
            own = {k: entry[k] for k in ("temperature", "alpha") if k in entry}
            if own:  # a valid stand-in for the other (distillation: checks its own)
                spec = {"name": "distillation", "temperature": 1.0, "alpha": 1.0, **own}
                errors += check_entry(w, spec, "name", OBJECTIVES)
            for _, n in entries(entry.get("noise", study.get("noise")), dict):
                if n.get("kind") not in NOISE or check_entry("", n, "kind", NOISE):
                    continue  # reported as a bad noise spec
                for setting in expand_grid(n, "kind", NOISE.get(n["kind"]).params):
                    key = (entry.get("name"), _noise_slug(setting))
                    if key in seen and seen[key] != i:
                        errors.append(
                            f"{w}: transfer set {key[0]!r} with noise {key[1]} is also "
                            f"transfer_sets[{seen[key]}]; accepted: distinct (name, noise) pairs"
                        )
                    seen[key] = i
        d = study.get("distillation")
        if isinstance(d, dict) and ("temperature" in d or "alpha" in d):
            own = {k: d[k] for k in ("temperature", "alpha") if k in d}
            spec = {"name": "distillation", "temperature": 1.0, "alpha": 1.0, **own}
            errors += check_entry(f"{where}.distillation", spec, "name", OBJECTIVES)
        for w, specs in noise_lists:
            for j, n in entries(specs, dict):
                if n.get("kind") == "randx":
                    errors.append(
                        f"{w}[{j}].kind: randx adds synthetic images, which have no teacher "
                        "logits nor classes; accepted: "
                        + ", ".join(k for k in NOISE.names() if k != "randx")
                    )
                elif w != f"{where}.noise":
                    errors += check_entry(f"{w}[{j}]", n, "kind", NOISE)
        return errors

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        return expand_distillation(name, study, config)


register(Distillation())
