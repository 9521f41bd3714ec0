"""The tables of study kind distillation: per run, stage and class, test errors (``errors``),
and their mean over seeds per configuration (``summary``); with the names the kind's other
files share (roles, stages, the teacher's path segment)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from corruptlab.data.transfer import shifted_classes, unseen_classes
from corruptlab.report.stats import RANGES, mean_ci
from corruptlab.report.tables import PROVENANCE_COLUMNS

TEACHER, STUDENT = "teacher", "student"
SHIFT_PREFIX = "shift_"  # eval condition of a transfer set's bias shift: shift_<transfer set>
BEFORE, AFTER = "before", "after"
ALL_CLASSES = "all"


def teacher_tag(config: str) -> str:
    """A teacher configuration id as one path segment of its students: ``from-<segments>``
    joined by ``+`` (the leading ``teacher`` left out)."""
    return "from-" + "+".join(config.split("/")[1:])


RUN_COLUMNS = [
    "config",
    "run_id",
    "seed",
    "role",
    "model",
    "noise",
    "transfer_set",
    "teacher_run_id",
    "teacher_config",
    "teacher_model",
    "teacher_noise",
    "objective",
    "kd_temperature",
    "kd_alpha",
]


def _run_info(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (its clean test condition) with the columns that say what it is."""
    r = runs[runs["condition"] == "clean"].copy()
    r["config"] = r["run_id"].str.rsplit("/seed", n=1).str[0]
    r["noise"] = r["run_id"].str.split("/").str[2]
    r["teacher_config"] = [
        t.rsplit("/seed", 1)[0] if isinstance(t, str) else None
        for t in r.get("teacher_run_id", [None] * len(r))
    ]
    for c in ("objective", "kd_temperature", "kd_alpha", "teacher_model", "teacher_noise"):
        if c not in r:
            r[c] = np.nan
    r["objective"] = r["objective"].fillna("cross_entropy")
    return r[[*RUN_COLUMNS, *[c for c in PROVENANCE_COLUMNS if c in r]]]


def errors(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per run (teachers and students), stage (``before`` the bias shift; ``after`` it, for a
    student whose transfer set lacks classes) and class (``all``, then each class): test
    examples, errors and accuracy, the shift chosen on the validation split, and what the run
    is (role, transfer set, its teacher's run id, T, alpha) with provenance."""
    runs, preds = tables["runs"], tables["predictions"]
    info = _run_info(runs).set_index("run_id")
    shifts = runs.set_index(["run_id", "condition"])["bias_shift"] if "bias_shift" in runs else None
    by_transfer = {e["name"]: e for e in study["transfer_sets"]}
    p = preds[["run_id", "condition", "label", "correct"]]
    rows = []
    n_classes = int(p["label"].max()) + 1
    for run_id, g in p.groupby("run_id", sort=True):
        meta = info.loc[run_id]
        stages = [(BEFORE, "clean", 0.0)]
        entry = by_transfer.get(meta["transfer_set"], {})
        if meta["role"] == STUDENT and shifted_classes(entry):
            condition = SHIFT_PREFIX + meta["transfer_set"]
            stages.append((AFTER, condition, float(shifts.loc[(run_id, condition)])))
        for stage, condition, shift in stages:
            c = g[g["condition"] == condition]
            groups = [(ALL_CLASSES, c)] + [(str(k), c[c["label"] == k]) for k in range(n_classes)]
            for label, part in groups:
                n = len(part)
                wrong = int(n - part["correct"].sum())
                rows.append(
                    {
                        "run_id": run_id,
                        **{k: meta[k] for k in info.columns},
                        "stage": stage,
                        "bias_shift": shift,
                        "shifted_classes": ",".join(map(str, shifted_classes(entry))),
                        "unseen_classes": ",".join(map(str, unseen_classes(entry, n_classes))),
                        "class": label,
                        "n": n,
                        "errors": wrong,
                        "accuracy": (n - wrong) / n if n else math.nan,
                    }
                )
    return pd.DataFrame(rows)


SUMMARY_KEYS = [c for c in RUN_COLUMNS if c not in ("run_id", "seed", "teacher_run_id")]


def summary(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration, stage and class: mean and 95% CI over seeds of the test accuracy, the
    mean number of test errors and the mean bias shift, with the teachers' run ids (``;``) and
    provenance."""
    e = tables["errors"]
    keys = [*SUMMARY_KEYS, "stage", "class"]
    rows = []
    for key, g in e.groupby(keys, sort=True, dropna=False):
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "teacher_run_ids": ";".join(sorted(g["teacher_run_id"].dropna().unique())),
                "n_test": int(g["n"].iloc[0]),
                "errors_mean": float(g["errors"].mean()),
                "bias_shift_mean": float(g["bias_shift"].mean()),
                **mean_ci(g["accuracy"].to_numpy(float), bounds=RANGES["accuracy"]),
                **{
                    c: ";".join(sorted(map(str, g[c].dropna().unique())))
                    for c in PROVENANCE_COLUMNS
                    if c in g
                },
            }
        )
    return pd.DataFrame(rows)
