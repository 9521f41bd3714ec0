"""The figures of study kind distillation (pyplot only inside the functions, through
corruptlab.report.style.pyplot)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.core.params import fmt_number
from corruptlab.report.stats import RANGES, mean_ci
from corruptlab.report.style import STYLE, pyplot
from corruptlab.studies.distillation.claims import _class_accuracy
from corruptlab.studies.distillation.tables import (
    AFTER,
    ALL_CLASSES,
    BEFORE,
    STUDENT,
    TEACHER,
    teacher_tag,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _band(ax, x, stats: pd.DataFrame, color, label: str, **kw) -> None:
    """Means joined by a line, each with its 95% CI as an error bar (visible at a single x, where
    a band has no width) and a band between them."""
    mean = stats["mean"].to_numpy(float)
    yerr = [mean - stats["ci95_low"].to_numpy(float), stats["ci95_high"].to_numpy(float) - mean]
    ax.errorbar(x, mean, yerr=yerr, color=color, label=label, marker="o", ms=3.5, lw=1.2,
                elinewidth=1, capsize=2.5, **kw)  # fmt: skip
    ax.fill_between(x, stats["ci95_low"], stats["ci95_high"], color=color, alpha=0.2, lw=0)


def _errors_stats(g: pd.DataFrame) -> dict:
    """Mean and 95% CI over seeds of test errors (counts), from per-run rows."""
    n = int(g["n"].iloc[0])
    s = mean_ci(g["errors"].to_numpy(float), bounds=(0.0, float(n)))
    return s


def errors_vs_temperature(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Test errors of the distilled students versus the temperature T (log scale), per teacher
    and alpha, beside the same student on hard labels and the teacher (horizontal lines): mean
    and 95% CI over seeds, on clean labels and transfer sets with every class."""
    plt = pyplot()
    e = tables["errors"]
    whole = _whole_from(e)
    e = e[(e["class"] == ALL_CLASSES) & (e["stage"] == BEFORE) & (e["noise"] == "none")]
    students = e[(e["role"] == STUDENT) & (e["transfer_set"].isin(whole))]
    panels = sorted(students.groupby(["model", "transfer_set"]).groups)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            max(len(panels), 1),
            figsize=(4.6 * max(len(panels), 1) + 1.8, 3.2),
            squeeze=False,
            layout="constrained",
        )
        for ax, (model, transfer) in zip(axes[0], panels, strict=False):
            s = students[(students["model"] == model) & (students["transfer_set"] == transfer)]
            soft = s[s["objective"] != "cross_entropy"]
            temps = sorted(soft["kd_temperature"].dropna().unique())
            lo, hi = (min(temps), max(temps)) if temps else (1, 20)
            i = 0
            several = soft["teacher_config"].nunique() > 1
            series = soft.groupby(["teacher_config", "kd_alpha"], sort=True)
            for (tconf, alpha), g in series:
                pts = pd.DataFrame(
                    [
                        {"T": t, **_errors_stats(gt)}
                        for t, gt in g.groupby("kd_temperature", sort=True)
                    ]
                )
                label = f"distilled, alpha={fmt_number(alpha)}"
                if several:
                    label += f", from {teacher_tag(tconf)[5:]}"
                # side by side around each T (log axis: a factor), so that error bars at the
                # same temperature do not hide each other
                dodge = 1.06 ** (i - (series.ngroups - 1) / 2)
                _band(ax, pts["T"] * dodge, pts, f"C{i}", label)
                i += 1
            for what, g, color, style in (
                ("hard labels", s[s["objective"] == "cross_entropy"], "#444444", "--"),
                (
                    "teacher",
                    e[(e["role"] == TEACHER) & e["config"].isin(soft["teacher_config"])],
                    "#aa3377",
                    ":",
                ),
            ):
                if g.empty:
                    continue
                st = _errors_stats(g)
                ax.axhline(st["mean"], color=color, ls=style, lw=1.2, label=what)
                ax.axhspan(st["ci95_low"], st["ci95_high"], color=color, alpha=0.12, lw=0)
            ax.set_xscale("log")
            ax.set_xticks(temps, [fmt_number(t) for t in temps])
            ax.minorticks_off()
            ax.set_xlim(lo / 1.3, hi * 1.3)
            ax.set_xlabel("temperature T")
            ax.set_title(f"student {model}, transfer set {transfer}")
            ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        axes[0, 0].set_ylabel(f"test errors (of {int(e['n'].iloc[0]) if len(e) else 0})")
        fig.suptitle("Test errors vs temperature (mean, 95% CI over seeds)", fontsize=9)
    return fig


def _whole_from(e: pd.DataFrame) -> list[str]:
    """The transfer sets with every class (those whose runs have no ``after`` stage)."""
    shifted = set(e.loc[e["stage"] == AFTER, "transfer_set"])
    return sorted(set(e["transfer_set"].dropna()) - shifted)


def _unseen_accuracy(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per student run on a transfer set that lacks classes, and stage: accuracy on the test
    examples of the classes it never saw."""
    e = tables["errors"]
    s = e[(e["role"] == STUDENT) & (e["shifted_classes"] != "")]
    rows = []
    for (config, transfer), g in s.groupby(["config", "transfer_set"], sort=True):
        unseen = [int(c) for c in g["unseen_classes"].iloc[0].split(",")]
        for stage in (BEFORE, AFTER):
            acc = _class_accuracy(g, unseen, stage)
            rows.append(
                {
                    "config": config,
                    "transfer_set": transfer,
                    "unseen": ",".join(map(str, unseen)),
                    "label": "hard labels"
                    if g["objective"].iloc[0] == "cross_entropy"
                    else f"distilled T={fmt_number(g['kd_temperature'].iloc[0])} "
                    f"alpha={fmt_number(g['kd_alpha'].iloc[0])}",
                    "noise": g["noise"].iloc[0],
                    "stage": stage,
                    **mean_ci(acc["accuracy"].to_numpy(float), bounds=RANGES["accuracy"]),
                }
            )
    return pd.DataFrame(rows)


def unseen_class_accuracy(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Test accuracy on the classes a student's transfer set lacks (the omitted 3s; for a set
    of only 7s and 8s, every other class), before and after the bias shift chosen on the
    validation split, per student: mean and 95% CI over seeds."""
    plt = pyplot()
    a = _unseen_accuracy(tables)
    sets = sorted(a["transfer_set"].unique()) if len(a) else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            max(len(sets), 1),
            figsize=(3.6 * max(len(sets), 1) + 1.6, 3.2),
            squeeze=False,
            layout="constrained",
            sharey=True,
        )
        for ax, name in zip(axes[0], sets, strict=False):
            d = a[a["transfer_set"] == name]
            labels = list(
                dict.fromkeys(d.sort_values("label", key=lambda s: s != "hard labels")["label"])
            )
            for i, (stage, color) in enumerate(((BEFORE, "#bbbbbb"), (AFTER, "#4477aa"))):
                st = d[d["stage"] == stage].set_index("label").reindex(labels)
                x = np.arange(len(labels)) + (i - 0.5) * 0.38
                mean = 100 * st["mean"].to_numpy(float)
                err = 100 * np.nan_to_num(
                    np.vstack([st["mean"] - st["ci95_low"], st["ci95_high"] - st["mean"]])
                )
                ax.bar(x, mean, 0.38, color=color, label=f"{stage} the shift")
                ax.errorbar(x, mean, yerr=err, fmt="none", ecolor="k", lw=0.8)
                tops = np.fmax(mean, 100 * st["ci95_high"].to_numpy(float))
                for xi, m, top in zip(x, mean, tops, strict=True):  # also of an empty bar
                    ax.text(xi, np.nan_to_num(top) + 1, f"{m:.0f}", ha="center", fontsize=6)
            ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=7)
            ax.set_ylim(0, 106)
            ax.set_title(f"transfer set {name} (unseen: {d['unseen'].iloc[0]})", fontsize=8)
        axes[0, 0].set_ylabel("test accuracy on the unseen classes (%)")
        axes[0, -1].legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(
            "Accuracy on unseen classes before/after the bias shift (mean, 95% CI)", fontsize=9
        )
    return fig


def noisy_teachers(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Test accuracy of each teacher, its distilled students and the hard-label student on the
    same labels, per teacher (model and label noise; transfer sets with every class): points at
    the mean with 95% CIs over seeds, on an axis fitted to them (points, not bars: a bar's
    length on an axis that does not start at 0 would exaggerate the differences)."""
    plt = pyplot()
    e = tables["errors"]
    whole = _whole_from(e)
    e = e[(e["class"] == ALL_CLASSES) & (e["stage"] == BEFORE)]
    teachers = e[e["role"] == TEACHER]
    students = e[(e["role"] == STUDENT) & e["transfer_set"].isin(whole)]
    groups = []  # (group label, [(point label, rows)])
    order = sorted(
        teachers.groupby("config"), key=lambda kv: (kv[1]["noise"].iloc[0] != "none", kv[0])
    )
    for tconf, t in order:
        noise = t["noise"].iloc[0]
        points = [("teacher", t)]
        d = students[(students["teacher_config"] == tconf) & (students["noise"] == noise)]
        for (temp, alpha), g in d.groupby(["kd_temperature", "kd_alpha"], sort=True):
            points.append((f"distilled T={fmt_number(temp)} alpha={fmt_number(alpha)}", g))
        hard = students[(students["objective"] == "cross_entropy") & (students["noise"] == noise)]
        if len(hard):
            points.append(("hard labels", hard))
        groups.append((f"teacher {t['model'].iloc[0]}\nlabels {noise}", points))
    labels = list(dict.fromkeys(label for _, points in groups for label, _ in points))
    distilled = [lab for lab in labels if lab.startswith("distilled")]
    colors = {"teacher": "#aa3377", "hard labels": "#555555"}
    colors.update({lab: f"C{i}" for i, lab in enumerate(distilled)})
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(2.4 * max(len(groups), 1) + 2.8, 3.2), layout="constrained")
        seen = set()
        for gi, (_, points) in enumerate(groups):
            width = 0.8 / len(points)
            for k, (label, rows) in enumerate(points):
                x = gi + (k - (len(points) - 1) / 2) * width
                st = mean_ci(rows["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])
                err = 100 * np.nan_to_num(
                    np.array([[st["mean"] - st["ci95_low"]], [st["ci95_high"] - st["mean"]]])
                )
                ax.errorbar(
                    [x],
                    [100 * st["mean"]],
                    yerr=err,
                    fmt="o",
                    ms=4,
                    color=colors[label],
                    ecolor=colors[label],
                    elinewidth=1.0,
                    capsize=2.5,
                    label=None if label in seen else label,
                )
                seen.add(label)
        ax.set_xticks(range(len(groups)), [g for g, _ in groups])
        ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
        ax.grid(axis="x", visible=False)
        ax.grid(axis="y", lw=0.4, alpha=0.5)
        ax.set_ylabel("test accuracy (%)")
        ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(
            "Teacher vs students under teacher label noise (mean, 95% CI over seeds)", fontsize=9
        )
    return fig
