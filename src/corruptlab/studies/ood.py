"""Study kind ``ood``: Hendrycks & Gimpel 2017, "A Baseline for Detecting Misclassified and
Out-of-Distribution Examples": how well the max-softmax probability (and entropy, energy,
max-logit) tells test images from OOD sets (noise images, corrupted test images, other datasets,
held-out classes): AUROC, FPR at 95% TPR, AUPR per set and score."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from corruptlab.core.checks import choice_errors, entries
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS
from corruptlab.eval.ood import OOD_KEYS, OOD_SETS, SCORES
from corruptlab.report.claims import (
    Paper,
    claims_table,
    compare,
    learns,
    not_applicable,
    our_setting,
)
from corruptlab.report.stats import RANGES, bounds_of, mean_ci
from corruptlab.report.style import STYLE, pyplot
from corruptlab.report.tables import CONFIG_COLUMNS, config_subjects, groups, provenance, summary
from corruptlab.studies import Output, StudyKind, register

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

SCHEMA = yaml.safe_load(
    """
ood:
  description: OOD sets an ood study scores every run against (the clean test
    set is in-distribution)
  type: object
  additionalProperties: false
  default: {}
  properties:
    synthetic:
      description: noise image sets drawn from the training data's statistics
        (registry corruptlab.eval.ood.OOD_SETS)
      type: array
      items:
        type: string
      uniqueItems: true
      default: []
    corruptions:
      description: the test set under each corruption (registry
        corruptlab.data.corruptions.CORRUPTIONS) at ood.severity
      type: array
      items:
        type: string
      uniqueItems: true
      default: []
    severity:
      description: severity of the corrupted OOD sets, 1..5
      type: integer
      minimum: 1
      maximum: 5
      default: 5
    datasets:
      description: the test split of other datasets (registry corruptlab.data.datasets.DATASETS),
        downloaded like the study's
      type: array
      items:
        type: string
      uniqueItems: true
      default: []
    scores:
      description: OOD scores (registry corruptlab.eval.ood.SCORES)
      type: array
      items:
        type: string
      minItems: 1
      uniqueItems: true
      default:
      - msp
      - entropy
      - energy
      - max_logit
"""
)

# --- tables -------------------------------------------------------------------------------------


OOD_METRICS = ["auroc", "fpr95", "aupr_in", "aupr_out"]


def ood_metrics(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration, OOD set and score: each OOD metric's mean, std and 95% CI over seeds,
    with the in-distribution (clean test) accuracy of the same runs and the set sizes."""
    runs = tables["ood_runs"]
    keys, grouped = groups(runs, [*CONFIG_COLUMNS, *OOD_KEYS])
    rows = []
    for key, group in grouped:
        base = dict(zip(keys, key, strict=True))
        base["in_accuracy"] = float(group["in_accuracy"].mean())
        base["n_in"] = int(group["n_in"].iloc[0])
        base["n_out"] = int(group["n_out"].iloc[0])
        base.update(provenance(group))
        for metric in OOD_METRICS:
            values = group[metric].to_numpy(float)
            rows.append({**base, "metric": metric, **mean_ci(values, bounds=bounds_of(metric))})
    return pd.DataFrame(rows)


# --- claims -------------------------------------------------------------------------------------


# Hendrycks & Gimpel 2017, Table 2 (MNIST in-distribution, MSP AUROC in %): their synthetic
# sets, defined in their code as 10,000 images of pixels i.i.d. N(0, 1) ("Gaussian") or U(0, 1)
# ("Uniform") on the [0, 1] pixel scale, unclipped (our hendrycks_gaussian, hendrycks_uniform).
HG_SOURCE = (
    "Hendrycks & Gimpel 2017, A Baseline for Detecting Misclassified and Out-of-Distribution "
    "Examples, Table 2 (MNIST)"
)
HG_SETTING = (
    "MNIST (60,000 images), 3-layer 256-unit GELU MLP trained 30 epochs with Adam; "
    "OOD: 10,000 images"
)
HG_AUROC = {"uniform": 0.99, "gaussian": 0.90}
# our OOD set -> (the paper's set, how ours differs; "" = the paper's definition)
HG_SETS = {
    "hendrycks_uniform": ("uniform", ""),
    "hendrycks_gaussian": ("gaussian", ""),
    "uniform_noise": ("uniform", "pixels uniform on the integers 0..255, the paper's on [0, 1]"),
    "gaussian_noise": (
        "gaussian",
        "a different set: pixels N(mean, std) of the training pixels, clipped to 0..255; the "
        "paper's are N(0, 1) on the [0, 1] scale, unclipped (hendrycks_gaussian)",
    ),
}


def hg_paper(ood_set: str, subject: str, study: dict) -> Paper | None:
    """Hendrycks & Gimpel's MSP AUROC for the set ``ood_set`` stands for, if any."""
    if ood_set not in HG_SETS:
        return None
    name, set_differs = HG_SETS[ood_set]
    differs = "; ".join(d for d in (our_setting(study, subject), set_differs) if d)
    setting = f"{HG_SETTING} of pixels i.i.d. {'U(0, 1)' if name == 'uniform' else 'N(0, 1)'}"
    return Paper(HG_AUROC[name], setting, HG_SOURCE, differs)


def _classifier_learns(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity: the classifiers whose scores detect OOD sets classify their own test set."""
    ood = tables["ood_runs"]
    per_run = ood.drop_duplicates("run_id").rename(columns={"in_accuracy": "accuracy"})
    frames = [g.assign(subject=name) for name, g in config_subjects(per_run)]
    per_run = pd.concat(frames, ignore_index=True) if frames else per_run.assign(subject="")
    return learns("the classifier learns its in-distribution classes", per_run, ["subject"])


def _msp_auroc_uniform(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "max-softmax AUROC above 0.9 against uniform noise"
    quantity = "AUROC(msp)"
    ood = tables["ood_runs"]
    sets = [s for s in ("uniform_noise", "hendrycks_uniform") if s in set(ood["ood_set"])]
    at = ood[ood["ood_set"].isin(sets) & (ood["score"] == "msp")]
    if at.empty:
        reason = (
            "the study scores no uniform_noise or hendrycks_uniform set with msp "
            "(ood.synthetic, ood.scores)"
        )
        return [not_applicable(claim, "-", quantity, reason)]
    rows = []
    for subject, g in config_subjects(at):
        for ood_set, s_g in g.groupby("ood_set", sort=True):
            s = mean_ci(s_g["auroc"].to_numpy(float), bounds=RANGES["auroc"])
            paper = hg_paper(ood_set, subject, study)
            row = compare(claim, f"{subject} vs {ood_set}", s, quantity, ">", 0.90, paper=paper)
            rows.append(row)
    return rows


def _msp_beats_chance(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "max-softmax detects every OOD set better than chance"
    quantity = "AUROC(msp)"
    ood = tables["ood_runs"]
    msp = ood[ood["score"] == "msp"]
    if msp.empty:
        return [not_applicable(claim, "-", quantity, "msp is not among ood.scores")]
    rows = []
    for subject, g in config_subjects(msp):
        for ood_set, s_g in g.groupby("ood_set", sort=True):
            s = mean_ci(s_g["auroc"].to_numpy(float), bounds=bounds_of("auroc"))
            paper = hg_paper(ood_set, subject, study)
            rows.append(
                compare(claim, f"{subject} vs {ood_set}", s, quantity, ">", 0.5, paper=paper)
            )
    return rows


# --- figures ------------------------------------------------------------------------------------


SCORE_COLORS = {"msp": "#1f77b4", "entropy": "#ff7f0e", "energy": "#2ca02c", "max_logit": "#d62728"}


def _ood_set_order(frame: pd.DataFrame) -> list[str]:
    """OOD sets grouped by family (synthetic, corruption, dataset, held-out), as configured."""
    families = ("synthetic", "corruption", "dataset", "held_out")
    firsts = frame.drop_duplicates("ood_set")
    rank = {f: i for i, f in enumerate(families)}
    return sorted(
        firsts["ood_set"],
        key=lambda s: rank.get(firsts.loc[firsts["ood_set"] == s, "ood_family"].iloc[0], 9),
    )


def roc_curves(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """ROC curves of OOD detection (in-distribution positive): one panel per OOD set and
    configuration, one line per score (the mean TPR over seeds at each FPR), the 95% CI over
    seeds as a band around the first score (msp, the baseline); the legend gives each score's
    mean AUROC."""
    from corruptlab.report.stats import mean_ci

    plt = pyplot()
    ood = tables["ood_runs"]
    subjects = config_subjects(ood)
    sets = _ood_set_order(ood)
    ncols = min(4, len(sets))
    nrows_per = -(-len(sets) // ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows_per * len(subjects),
            ncols,
            figsize=(2.5 * ncols + 0.6, 2.4 * nrows_per * len(subjects) + 0.4),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for ax in axes.flat:
            ax.set_visible(False)
        for r, (subject, frame) in enumerate(subjects):
            for i, ood_set in enumerate(sets):
                ax = axes[r * nrows_per + i // ncols, i % ncols]
                ax.set_visible(True)
                d = frame[frame["ood_set"] == ood_set]
                scores = [c for c in SCORE_COLORS if c in set(d["score"])]
                scores += sorted(set(d["score"]) - set(scores))
                for score in scores:
                    g = d[d["score"] == score]
                    fpr = np.asarray(g["roc_fpr"].iloc[0], float)
                    tpr = np.stack([np.asarray(v, float) for v in g["roc_tpr"]])
                    color = SCORE_COLORS.get(score, "#7f7f7f")
                    ax.plot(
                        fpr,
                        tpr.mean(0),
                        color=color,
                        lw=1.2,
                        label=f"{score} ({g['auroc'].mean():.3f})",
                    )
                    if score == scores[0] and len(g) > 1:  # one band keeps the panel legible
                        band = [mean_ci(tpr[:, j], bounds=(0.0, 1.0)) for j in range(tpr.shape[1])]
                        ax.fill_between(
                            fpr,
                            [b["ci95_low"] for b in band],
                            [b["ci95_high"] for b in band],
                            color=color,
                            alpha=0.15,
                            lw=0,
                        )
                ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":")
                ax.set_title(ood_set if len(subjects) == 1 else f"{subject}: {ood_set}")
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 1.01)
                ax.legend(
                    title="score (AUROC)",
                    frameon=False,
                    loc="lower right",
                    fontsize=6.5,
                    title_fontsize=6.5,
                )
                if i % ncols == 0:
                    ax.set_ylabel("TPR (in-distribution kept)")
                if i // ncols == nrows_per - 1 or i + ncols >= len(sets):
                    ax.set_xlabel("FPR (OOD accepted)")
        fig.suptitle(
            "OOD detection ROC curves (mean over seeds; band: 95% CI of the first score)",
            fontsize=9,
        )
    return fig


def ood_auroc(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Mean AUROC over seeds per OOD set (rows) and score (columns), one panel per
    configuration."""
    plt = pyplot()
    m = tables["ood_metrics"]
    m = m[m["metric"] == "auroc"]
    subjects = config_subjects(m)
    sets = _ood_set_order(m)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(subjects),
            squeeze=False,
            layout="constrained",
            figsize=(3.4 * len(subjects) + 0.8, 0.32 * len(sets) + 1.4),
        )
        for ax, (subject, frame) in zip(axes[0], subjects, strict=True):
            grid = frame.pivot_table(index="ood_set", columns="score", values="mean")
            grid = grid.reindex(index=[s for s in sets if s in grid.index])
            grid = grid[
                [s for s in SCORE_COLORS if s in grid] + [s for s in grid if s not in SCORE_COLORS]
            ]
            im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
            for (r, c), v in np.ndenumerate(grid.to_numpy()):
                ax.text(
                    c,
                    r,
                    f"{v:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if v < 0.8 else "k",
                )
            ax.set_xticks(range(grid.shape[1]), list(grid.columns))
            ax.set_yticks(range(grid.shape[0]), list(grid.index))
            ax.set_title(subject)
            ax.grid(False)
        fig.colorbar(im, ax=axes[0, -1], label="AUROC (0.5 = chance)")
        fig.suptitle("OOD detection AUROC by set and score (mean over seeds)", fontsize=9)
    return fig


class OOD(StudyKind):
    name = "ood"
    doc = "Hendrycks & Gimpel 2017: max-softmax (and entropy, energy, max-logit) OOD detection"
    schema = SCHEMA
    steps = ("evaluate", "ood")
    tables = {
        "summary": Output(summary, ("runs",)),
        "ood_metrics": Output(ood_metrics, ("ood_runs",)),
        "claims": Output(claims_table, ("runs", "ood_runs")),
    }
    figures = {
        "roc_curves": Output(roc_curves, ("ood_runs",)),
        "ood_auroc": Output(ood_auroc, ("ood_metrics",)),
    }
    claims = (_classifier_learns, _msp_auroc_uniform, _msp_beats_chance)

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        ood = study.get("ood") if isinstance(study.get("ood"), dict) else {}
        for key, registry in (
            ("synthetic", OOD_SETS),
            ("corruptions", CORRUPTIONS),
            ("datasets", DATASETS),
            ("scores", SCORES),
        ):
            for i, name in entries(ood.get(key), str):
                errors += choice_errors(f"{where}.ood.{key}[{i}]", name, registry)
                if key == "datasets" and name == study.get("dataset"):
                    others = ", ".join(n for n in DATASETS if n != name)
                    errors.append(
                        f"{where}.ood.{key}[{i}]: {name!r} is the study's own dataset; "
                        f"accepted: another dataset ({others})"
                    )
        sets = [ood.get(k) for k in ("synthetic", "corruptions", "datasets")]
        if not any(isinstance(v, list) and v for v in sets) and not study.get("in_classes"):
            errors.append(
                f"{where}.ood: a{'n' * (self.name[0] in 'aeiou')} {self.name} study needs at "
                "least one OOD set; accepted: names in "
                "ood.synthetic, ood.corruptions or ood.datasets, or in_classes (held-out classes)"
            )
        return errors

    def ood_sets(self, study: dict) -> list[dict]:
        """The (validated) study's OOD sets as corruptlab.eval.ood.load_ood_set specs (without
        file paths, which the workflow adds)."""
        ood = study["ood"]
        sets = [{"family": "synthetic", "name": n} for n in ood["synthetic"]]
        sets += [
            {"family": "corruption", "name": n, "severity": ood["severity"]}
            for n in ood["corruptions"]
        ]
        sets += [{"family": "dataset", "name": n} for n in ood["datasets"]]
        if study.get("in_classes"):
            sets.append({"family": "held_out", "name": "held_out_classes"})
        return sets

    def ood_scores(self, study: dict) -> list[str]:
        return list(study["ood"]["scores"])


register(OOD())
