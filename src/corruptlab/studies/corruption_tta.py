"""Study kind ``corruption_tta``: Wang et al. 2021, "Tent: Fully Test-Time Adaptation by Entropy
Minimization": error, loss and entropy under image corruptions at five severities, without
adaptation (source), with test-batch statistics (norm) and with entropy minimisation (tent);
mCE relative to a baseline model (Hendrycks & Dietterich 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from corruptlab.core.grid import training_settings
from corruptlab.report.claims import Paper, claims_table, compare, not_applicable, our_setting
from corruptlab.report.stats import (
    bounds_of,
    diff_ci,
    difference_range,
    mean_ci,
    spearman,
)
from corruptlab.report.style import STYLE, model_color, model_order, plot_band, pyplot
from corruptlab.report.tables import CONFIG_COLUMNS, EVAL_KEYS, ci_rows, summary
from corruptlab.studies import Output, StudyKind, register

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

SCHEMA = yaml.safe_load(
    """
baseline_model:
  description: the model whose corruption errors (without adaptation) normalise
    mCE, as AlexNet in ImageNet-C; one of the study's models
  type: string
"""
)

# --- tables -------------------------------------------------------------------------------------


# what identifies an adaptation method setting: the evaluation keys but the test condition
METHOD_KEYS = [k for k in EVAL_KEYS if k not in ("condition", "severity")]


def first_settings(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's first configured setting (e.g. tent's first lr and batch size
    as the config lists them): the lowest ``method_order``, never the first in string order."""
    first = frame.groupby("method", sort=False)["method_order"].transform("min")
    return frame[frame["method_order"] == first]


def corruption_errors(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Test error under each corruption and severity, per configuration and adaptation method,
    with 95% CIs over seeds; ``condition == "mean"`` rows average over the corruptions (per
    severity, and over all severities with ``severity`` = 0); ``metric == "mCE"`` rows give the
    mean corruption error relative to the study's ``baseline_model`` (ImageNet-C's mCE:
    per corruption, the sum over severities of the model's error over the baseline's, averaged
    over corruptions)."""
    runs = tables["runs"]
    runs = runs.assign(error=1.0 - runs["accuracy"])
    corrupted = runs[runs["condition"] != "clean"]
    cfg = [c for c in [*CONFIG_COLUMNS, *METHOD_KEYS] if c in runs]
    rows = ci_rows(corrupted, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    per_seed = corrupted.groupby([*cfg, "severity", "seed"], dropna=False)["error"].mean()
    per_seed = per_seed.reset_index().assign(condition="mean")
    rows += ci_rows(per_seed, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    overall = corrupted.groupby([*cfg, "seed"], dropna=False)["error"].mean().reset_index()
    rows += ci_rows(
        overall.assign(condition="mean", severity=0),
        [*cfg, "condition", "severity"],
        "error",
        {"metric": "error"},
    )
    rows += _mce_rows(corrupted, cfg, study.get("baseline_model"))
    return pd.DataFrame(rows)


def _mce_rows(corrupted: pd.DataFrame, cfg: list[str], baseline: str | None) -> list[dict]:
    """mCE per configuration and method setting: per corruption, the sum over severities of the
    setting's mean error divided by the same sum for one fixed reference, the baseline model
    without adaptation (``source``; Hendrycks & Dietterich 2019), then averaged over the
    corruptions. With one reference, mCEs compare across models and methods."""
    if not baseline or corrupted.empty:
        return []
    mean_err = corrupted.groupby([*cfg, "condition", "severity"], dropna=False)["error"].mean()
    summed = mean_err.groupby(level=[*cfg, "condition"], dropna=False).sum().reset_index()
    others = [c for c in cfg if c != "model" and c not in METHOD_KEYS]
    reference = summed[(summed["model"] == baseline) & (summed["method"] == "source")]
    if reference.empty:
        return []  # no reference: the baseline model was not evaluated without adaptation
    reference = reference[[*others, "condition", "error"]]
    merged = summed.merge(reference, on=[*others, "condition"], suffixes=("", "_baseline"))
    merged["ce"] = merged["error"] / merged["error_baseline"]
    out = merged.groupby(cfg, dropna=False)["ce"].agg(["mean", "count"]).reset_index()
    return [
        {
            **{c: r[c] for c in cfg},
            "condition": "mean",
            "severity": 0,
            "metric": "mCE",
            "n": int(r["count"]),
            "mean": float(r["mean"]),
            "baseline_model": baseline,
        }
        for _, r in out.iterrows()
    ]


def _per_run_deciles(p: pd.DataFrame) -> pd.DataFrame:
    """Per run and corrupted test condition, error and mean entropy per decile of predictive
    entropy within that condition (ranks break ties in the stored order)."""
    rows = []
    keys = ["model", "run_id", "condition", "severity"]
    for (model, run_id, condition, severity), g in p.groupby(keys, sort=True):
        decile = pd.qcut(g["entropy"].rank(method="first"), 10, labels=False)
        for d, dg in g.assign(decile=decile + 1).groupby("decile"):
            rows.append(
                {
                    "model": model,
                    "run_id": run_id,
                    "condition": condition,
                    "severity": int(severity),
                    "decile": int(d),
                    "entropy": float(dg["entropy"].mean()),
                    "error": float(1.0 - dg["correct"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=[*keys, "decile", "entropy", "error"])


def entropy_deciles(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """TENT Figure 1: error per decile of predictive entropy for the source model (no
    adaptation), deciles taken within each corrupted test condition of each run; mean and 95%
    CI over runs. Rows with ``condition == "mean"`` (severity 0) average each run's deciles over
    the conditions: within-condition ranks, so that easy and hard test sets are not what the
    deciles sort."""
    p = tables["predictions"]
    p = p[(p["condition"] != "clean") & (p["method"] == "source")]
    per_run = _per_run_deciles(p)
    pooled = (
        per_run.groupby(["model", "run_id", "decile"], sort=True)[["entropy", "error"]]
        .mean()
        .reset_index()
        .assign(condition="mean", severity=0)
    )
    rows = []
    for frame in (per_run, pooled):
        for (m, c, s, d), g in frame.groupby(["model", "condition", "severity", "decile"]):
            stats = mean_ci(g["error"].to_numpy(float), bounds=bounds_of("error"))
            rows.append(
                {
                    "model": m,
                    "condition": c,
                    "severity": int(s),
                    "decile": int(d),
                    "entropy": float(g["entropy"].mean()),
                    "n_runs": len(g),
                    **{f"error_{k}": v for k, v in stats.items() if k != "n"},
                }
            )
    return pd.DataFrame(rows)


# --- claims -------------------------------------------------------------------------------------


NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")

# Wang et al. 2021, Table 2: CIFAR-10-C at severity 5, error averaged over the 15 corruptions,
# ResNet-26: source 40.8%, test-time normalisation (BN) 17.3%, tent 14.3%.
TENT_TABLE_2 = {"source": 0.408, "norm": 0.173, "tent": 0.143}


def _tent_paper(method: str, model: str, condition: str, study: dict) -> Paper:
    gap = TENT_TABLE_2[method] - TENT_TABLE_2["source"]
    name = "BN" if method == "norm" else "tent"
    return Paper(
        value=gap,
        setting=f"CIFAR-10-C severity 5, ResNet-26, mean over 15 corruptions: error {name} "
        f"{TENT_TABLE_2[method]:.1%} - source {TENT_TABLE_2['source']:.1%}",
        source="Wang et al. 2021, Tent: Fully Test-Time Adaptation by Entropy Minimization, "
        "Table 2",
        differs=our_setting(study, model, f"one corruption ({condition})")
        + "; not CIFAR-10-C's mean over 15 corruptions",
    )


def _tta_beats_source(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "tent and norm error below source on the noise corruptions at severity 5"
    quantity = "error(method) - error(source)"
    runs = tables["runs"]
    at5 = runs[runs["condition"].isin(NOISE_CORRUPTIONS) & (runs["severity"] == 5)]
    if at5.empty:
        reason = "the study has no noise corruption at severity 5"
        return [not_applicable(claim, "-", quantity, reason)]
    at5 = first_settings(at5)  # each method's first configured setting
    rows = []
    for (model, condition), g in at5.groupby(["model", "condition"], sort=True):
        source = g[g["method"] == "source"].set_index("seed")["accuracy"]
        for method in ("norm", "tent"):
            m = g[g["method"] == method]
            subject = f"{model} {method} ({condition})"
            paper = _tent_paper(method, model, condition, study)
            if m.empty or source.empty:
                reason = f"{method} not evaluated"
                rows.append(not_applicable(claim, subject, quantity, reason, paper=paper))
                continue
            d = diff_ci(
                1 - m["accuracy"].to_numpy(float),
                1 - source.to_numpy(float),
                bounds=difference_range("error"),
            )
            setting = m["method_id"].iloc[0]
            rows.append(compare(claim, subject, d, quantity, "<", 0, setting, paper))
    return rows


CLEAN_DROP = 0.02  # the most clean accuracy test-time adaptation may cost (2 points)


def _clean_accuracy_kept(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity check: on the clean test set, every adaptation setting keeps the source model's
    accuracy (TENT's tables: norm and tent stay close to source on clean data). Broken batch
    statistics (e.g. a class-sorted stream) show here first."""
    claim = "norm and tent keep the clean accuracy of source (within 2 points)"
    quantity = "accuracy(method) - accuracy(source) on the clean test set, paired by seed"
    runs = tables["runs"]
    clean = runs[runs["condition"] == "clean"]
    adapted = clean[clean["method"] != "source"]
    if adapted.empty:
        return [not_applicable(claim, "-", quantity, "no adaptation method evaluated")]
    rows = []
    for model, g in clean.groupby("model", sort=True):
        source = g[g["method"] == "source"].set_index("seed")["accuracy"]
        settings = g[g["method"] != "source"].sort_values("method_order")
        for setting, m in settings.groupby("method_id", sort=False):
            subject = f"{model} {setting}"
            if source.empty:
                rows.append(not_applicable(claim, subject, quantity, "source not evaluated"))
                continue
            ordered = (m["tta_stream"] == "class_ordered").any()
            m = m.set_index("seed")["accuracy"]
            seeds = source.index.intersection(m.index)
            paired = (m[seeds] - source[seeds]).to_numpy(float)
            d = mean_ci(paired, bounds=difference_range("accuracy"))
            detail = f"source {source[seeds].mean():.4f}, {setting} {m[seeds].mean():.4f}"
            if ordered:  # a non-i.i.d. stream, evaluated to show its known failure
                reason = "class_ordered stream: test-batch statistics are expected to fail"
                rows.append(not_applicable(claim, subject, quantity, reason, d, detail))
                continue
            rows.append(compare(claim, subject, d, quantity, ">=", -CLEAN_DROP, detail))
    return rows


def _entropy_ranks_error(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Within each corrupted test set, the source model's predictive entropy rank-correlates
    with its errors (TENT's Figure 1 analysis); one row per test set and one for the mean over
    the test sets (per run the mean of its within-set correlations). Pooling the test sets into
    one correlation would mix how hard each set is with how certain each prediction is."""
    claim = "predictive entropy rank-correlates with error (source, within each corrupted set)"
    quantity = "Spearman(entropy, error), mean over runs"
    p = tables["predictions"]
    p = p[(p["condition"] != "clean") & (p["method"] == "source")]
    rho_range = bounds_of("spearman")
    rows = []
    for model, g in p.groupby("model", sort=True):
        per_set = pd.DataFrame(
            [
                {
                    "condition": c,
                    "severity": int(sev),
                    "run_id": r,
                    "rho": spearman(x["entropy"], ~x["correct"].astype(bool)),
                }
                for (c, sev, r), x in g.groupby(["condition", "severity", "run_id"], sort=True)
            ]
        )
        mean = per_set.groupby("run_id")["rho"].mean()
        s = mean_ci(mean.to_numpy(float), bounds=rho_range)
        detail = f"{per_set.groupby(['condition', 'severity']).ngroups} test sets"
        rows.append(compare(claim, f"{model} (mean over sets)", s, quantity, ">", 0, detail))
        for (c, sev), x in per_set.groupby(["condition", "severity"], sort=True):
            s = mean_ci(x["rho"].to_numpy(float), bounds=rho_range)
            rows.append(compare(claim, f"{model} ({c} s{sev})", s, quantity, ">", 0))
    return rows or [not_applicable(claim, "-", quantity, "no corrupted test set evaluated")]


# --- figures ------------------------------------------------------------------------------------


def has_corruptions(study: dict) -> bool:
    """Whether a study evaluates under corruptions (the figures of corrupted test sets)."""
    return bool(study.get("evaluation", {}).get("corruptions"))


def has_tent(study: dict) -> bool:
    """Whether a study adapts with tent under corruptions (``tent_grid``)."""
    methods = study.get("evaluation", {}).get("methods", [])
    return has_corruptions(study) and any(m["name"] == "tent" for m in methods)


def corruption_gallery(tables: dict[str, pd.DataFrame], study: dict, files: dict) -> Any:
    """One test digit (the dataset's first) under every registered corruption and severity."""
    from corruptlab.data.datasets import load_prepared
    from corruptlab.report.gallery import gallery_figure

    data = load_prepared(files["dataset"])
    return gallery_figure(data["test_images"][0], seed=0)


METHOD_COLORS = {"source": "#555555", "norm": "#1f77b4", "tent": "#d62728"}


def error_by_entropy_decile(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 1: error per decile of predictive entropy, deciles taken within each
    corrupted test set; thin lines: each corruption and severity, thick line and band: their
    mean with its 95% CI over runs; one panel per model."""
    plt = pyplot()
    t = tables["entropy_deciles"]
    models = model_order(t["model"]) or ["(no corrupted test sets)"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            squeeze=False,
            sharey=True,
            figsize=(0.4 + 3.4 * len(models), 2.8),
            layout="constrained",
        )
        for ax, model in zip(axes[0], models, strict=True):
            d = t[t["model"] == model]
            sets = list(d[d["condition"] != "mean"].groupby(["condition", "severity"]))
            for i, (_, g) in enumerate(sets):
                g = g.sort_values("decile")
                label = f"each of {len(sets)} test sets" if i == 0 else None
                ax.plot(g["decile"], 100 * g["error_mean"], color="0.6", lw=0.6, label=label)
            m = d[d["condition"] == "mean"].sort_values("decile")
            plot_band(
                ax,
                m["decile"],
                m["error_mean"],
                m["error_ci95_low"],
                m["error_ci95_high"],
                model_color(model),
                "mean over the sets (95% CI)",
                scale=100,
            )
            ax.set_title(model)
            ax.set_xlabel("entropy decile within a test set (1 = most confident)")
            ax.set_xticks(range(1, 11))
            if len(d):
                ax.legend(frameon=False, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no corrupted test set", ha="center", va="center")
        axes[0, 0].set_ylabel("error (%)")
        fig.suptitle("Error by predictive entropy decile (source model)", fontsize=9)
    return fig


def loss_entropy_by_severity(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 2: loss (NLL) and entropy grow together with corruption severity."""
    plt = pyplot()
    runs = tables["runs"]
    runs = runs[runs["method"] == "source"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), layout="constrained")
        for ax, metric, label in zip(
            axes, ("nll", "entropy"), ("loss (NLL, nats)", "entropy (nats)"), strict=True
        ):
            for model in model_order(runs["model"]):
                per_seed = (
                    runs[runs["model"] == model]
                    .groupby(["severity", "seed"])[metric]
                    .mean()
                    .reset_index()
                )
                stats = pd.DataFrame(
                    [
                        {
                            "severity": s,
                            **mean_ci(g[metric].to_numpy(float), bounds=bounds_of(metric)),
                        }
                        for s, g in per_seed.groupby("severity")
                    ]
                )
                plot_band(
                    ax,
                    stats["severity"],
                    stats["mean"],
                    stats["ci95_low"],
                    stats["ci95_high"],
                    model_color(model),
                    model,
                )
            ax.set_xlabel("severity (0 = clean; mean over corruptions)")
            ax.set_ylabel(label)
        axes[-1].legend(title="model", frameon=False)
        fig.suptitle("Loss and entropy by corruption severity (source model)", fontsize=9)
    return fig


def error_by_corruption(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 4: error per corruption at the highest severity for source, norm and tent."""
    plt = pyplot()
    e = tables["corruption_errors"]
    e = e[(e["metric"] == "error") & (e["condition"] != "mean")]
    at_max = e[e["severity"] == e["severity"].max()]
    e = first_settings(at_max)
    conditions = sorted(e["condition"].unique())
    settings = e.sort_values("method_order").drop_duplicates("method")
    methods = settings["method"].tolist()
    labels = dict(zip(methods, settings["method_id"], strict=True))
    left_out = at_max["method_id"].nunique() - len(methods)
    models = model_order(e["model"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(models),
            1,
            squeeze=False,
            layout="constrained",
            figsize=(
                max(4.2, 0.55 * len(conditions) * len(methods) / 2 + 1.5) + 2.4,
                2.6 * len(models),
            ),
        )
        width = 0.8 / max(1, len(methods))
        x = np.arange(len(conditions))
        for ax, model in zip(axes[:, 0], models, strict=True):
            for i, method in enumerate(methods):
                d = e[(e["model"] == model) & (e["method"] == method)].set_index("condition")
                d = d.reindex(conditions)
                err = 100 * d["mean"].to_numpy(float)
                lo = err - 100 * d["ci95_low"].to_numpy(float)
                hi = 100 * d["ci95_high"].to_numpy(float) - err
                ax.bar(
                    x + (i - (len(methods) - 1) / 2) * width,
                    err,
                    width,
                    yerr=np.nan_to_num(np.vstack([lo, hi])),
                    capsize=1.5,
                    color=METHOD_COLORS.get(method),
                    label=labels[method],
                )
            ax.set_xticks(x, [c.replace("_", " ") for c in conditions], rotation=45, ha="right")
            ax.set_ylabel("error (%)")
            ax.set_title(f"{model}, severity {int(e['severity'].max())}")
        axes[0, 0].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        note = "each method at its first configured setting; bars: mean, 95% CI over seeds"
        if left_out:
            note += f"\n{left_out} other setting(s) in tables/corruption_errors.parquet"
        fig.supxlabel(note, fontsize=7, color="0.35")
    return fig


def tent_grid(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 5: tent's error (mean over corruptions and severities) over its learning
    rate x batch size grid, each cell annotated with its mean and the half-width of its 95% CI
    over seeds. One colour scale for every panel, from 0 to the next 10% at or above the
    largest error drawn or of the source model (no adaptation, the same mean): cells a few
    tenths of a point apart look alike, as they are; the panel title gives source's error and a
    line marks it on the colour bar."""
    plt = pyplot()
    e = tables["corruption_errors"]
    e = e[(e["metric"] == "error") & (e["condition"] == "mean") & (e["severity"] == 0)]
    source = 100 * e[e["method"] == "source"].groupby("model")["mean"].mean()
    e = e[e["method"] == "tent"]
    # the grid over lr x batch size at the first configured steps and stream
    fixed = ""
    if len(e):
        first = e.loc[e["method_order"].idxmin()]
        e = e[(e["tta_steps"] == first["tta_steps"]) & (e["tta_stream"] == first["tta_stream"])]
        fixed = f"\n({int(first['tta_steps'])} step(s) per batch, {first['tta_stream']} stream)"
    models = model_order(e["model"]) or ["(no tent runs)"]
    top = np.nanmax([100 * e["mean"].max(), source.max(), 0.0])
    vmax = float(min(100.0, max(10.0, 10 * np.ceil(top / 10 - 1e-9))))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            squeeze=False,
            layout="constrained",
            figsize=(3.2 * len(models) + 1.2, 3.1),
        )
        im = None
        for ax, model in zip(axes[0], models, strict=True):
            cells = e[e["model"] == model].assign(
                half=lambda d: (d["ci95_high"] - d["ci95_low"]) / 2
            )
            grid, half = (
                cells.pivot_table(
                    index="tta_batch_size", columns="tta_lr", values=v, aggfunc="mean"
                )
                for v in ("mean", "half")
            )
            if grid.empty:
                ax.text(0.5, 0.5, "tent not evaluated", ha="center", va="center")
                continue
            im = ax.imshow(
                100 * grid.to_numpy(), cmap="viridis_r", aspect="auto", vmin=0, vmax=vmax
            )
            for (r, c), v in np.ndenumerate(100 * grid.to_numpy()):
                shade = im.cmap(im.norm(v))  # dark text on light cells, light on dark
                luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
                color = "black" if luminance > 0.5 else "white"
                h = 100 * half.reindex_like(grid).to_numpy()[r, c]
                text = f"{v:.1f}" + (f"\n±{h:.1f}" if np.isfinite(h) else "")
                ax.text(c, r, text, ha="center", va="center", fontsize=7, color=color)
            ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [f"{int(v)}" for v in grid.index])
            ax.set_xlabel("tent learning rate")
            ax.set_ylabel("test batch size")
            ax.set_title(
                f"{model}" + (f" (source: {source[model]:.1f}%)" if model in source else "")
            )
            ax.grid(False)
        if im is not None:
            drawn = source.reindex([m for m in models if m in source])
            label = "error (%)" + ("\nline: source (no adaptation)" if len(drawn) else "")
            bar = fig.colorbar(im, ax=list(axes[0]), label=label)
            for value in drawn:
                bar.ax.axhline(value, color="tab:red", lw=1.5)
        fig.suptitle(
            f"tent: mean error (%) over corruptions and severities{fixed}\n"
            f"cells: mean ± half its 95% CI over seeds; colour from 0 to {vmax:g}%",
            fontsize=9,
        )
    return fig


class CorruptionTTA(StudyKind):
    name = "corruption_tta"
    doc = "Wang et al. 2021 (TENT): corruptions at five severities, source / norm / tent"
    schema = SCHEMA
    tables = {
        "summary": Output(summary, ("runs",)),
        "corruption_errors": Output(corruption_errors, ("runs",)),
        "entropy_deciles": Output(entropy_deciles, ("predictions",)),
        "claims": Output(claims_table, ("runs", "predictions")),
    }
    figures = {
        "corruption_gallery": Output(corruption_gallery, files=("dataset",)),
        "error_by_entropy_decile": Output(
            error_by_entropy_decile, ("entropy_deciles",), when=has_corruptions
        ),
        "loss_entropy_by_severity": Output(
            loss_entropy_by_severity, ("runs",), when=has_corruptions
        ),
        "error_by_corruption": Output(
            error_by_corruption, ("corruption_errors",), when=has_corruptions
        ),
        "tent_grid": Output(tent_grid, ("corruption_errors",), when=has_tent),
    }
    claims = (_clean_accuracy_kept, _tta_beats_source, _entropy_ranks_error)

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        baseline, models = study.get("baseline_model"), study.get("models")
        if isinstance(baseline, str) and isinstance(models, list) and baseline not in models:
            errors.append(
                f"{where}.baseline_model: {baseline!r} is not one of the study's models; "
                f"accepted: {', '.join(map(str, models))}"
            )
        settings = training_settings(study)
        if len(settings) > 1:
            errors.append(
                f"{where}: trains each model in {len(settings)} settings "
                f"({', '.join(settings[:4])}{', ...' if len(settings) > 4 else ''}), but its "
                "tables, claims and figures compare adaptation methods per model and would "
                "average over them; accepted: one noise setting and one optimizer setting "
                "(one lr, batch_size, max_epochs, objective) per corruption_tta study (put "
                "other settings in studies of their own)"
            )
        return errors


register(CorruptionTTA())
