"""Study kind ``no_gd``: "If the lottery ticket hypothesis is real, can we train a neural network
without gradient descent?" (issue 16; the notebook behind it trains the PyTorch MNIST example
and asks the question for its OOD behaviour). Every run trains a registered model by one
training method (``corruptlab.train.methods.METHODS``: gradient descent, masks over frozen
random weights, gradient-free search), and is evaluated and scored against OOD sets like an
``ood`` study's (the same ``ood:`` key and set definitions).

Runs: models x noise settings x method settings (each method's list-valued parameters
expanded; a method that trains with an optimizer, such as ``gd``, also times its optimizer
settings: the entry's own ``optimizers`` or the study's) x batch sizes x max_epochs x seeds.
A run's path names its method: ``<model>/<noise>/<method slug>/<optimizer slug>-bs<batch>``
(``mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64/seed0``), or ``.../<method slug>/bs<batch>``
for a method without an optimizer (``mlp2/none/random_search-p16/bs128/seed0``).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from corruptlab.core import runs as run_paths
from corruptlab.core.checks import check_entry, entries
from corruptlab.core.grid import (
    as_list,
    expand_grid,
    optimizer_grid,
    optimizer_slug,
    seed_list,
)
from corruptlab.core.params import fmt_number
from corruptlab.data.noise import NOISE
from corruptlab.report.claims import (
    LEARNS_ABOVE,
    Paper,
    claims_table,
    compare,
    exact,
    learns,
    not_applicable,
    our_setting,
    reported,
)
from corruptlab.report.stats import RANGES, diff_ci, difference_range, mean_ci
from corruptlab.report.style import STYLE, pyplot
from corruptlab.report.tables import CONFIG_COLUMNS, provenance, summary
from corruptlab.studies import Output, StudyKind, register
from corruptlab.studies.ood.kind import OOD
from corruptlab.studies.ood.kind import SCHEMA as OOD_SCHEMA
from corruptlab.studies.ood.tables import ood_metrics
from corruptlab.train.methods import (
    DEFAULT_METHOD,
    FROZEN_DIGEST,
    MASK_DENSITY,
    METHODS,
    NO_OPTIMIZER,
)
from corruptlab.train.objectives import DEFAULT_OBJECTIVE
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

SCHEMA = {
    **yaml.safe_load(
        """
methods:
  description: "training methods (registry corruptlab.train.methods.METHODS), each
    {name, <parameter>: <value or list>, ...}; an entry may restrict the models it trains and
    set its own batch_size and max_epochs, and one that trains with an optimizer (gd) its own
    optimizers (else the study's)"
  type: array
  minItems: 1
  default:
  - name: gd
  items:
    type: object
    required: [name]
    properties:
      name: {type: string}
      models:
        description: "the study's models this method trains (default: all of them)"
        type: array
        items: {type: string}
        minItems: 1
        uniqueItems: true
      optimizers: {$ref: "#/$defs/study/properties/optimizers"}
      batch_size: {$ref: "#/$defs/study/properties/batch_size"}
      max_epochs: {$ref: "#/$defs/study/properties/max_epochs"}
    additionalProperties:
      oneOf:
        - {$ref: "#/$defs/number_or_list"}
        - {type: string}
        - {type: array, items: {type: string}, minItems: 1, uniqueItems: true}
        - {type: boolean}
        - {type: array, items: {type: boolean}, minItems: 1, uniqueItems: true}
"""
    ),
    **OOD_SCHEMA,
}

# the names issue 16 gives the methods (claims look them up; absent ones are not applicable)
EDGE_POPUP, SUPERMASK = "edge_popup", "bernoulli_supermask"
EDGE_POPUP_K = 0.5  # the edge-popup claim's kept fraction (parameter ``k``)
# the gradient-free methods from the strongest expected to the weakest at equal wall clock
ES_CHAIN = ("openai_es", "one_plus_one_es", "simulated_annealing", "random_search")
# the notebook's network and recipe (the PyTorch MNIST example with 4 epochs)
NOTEBOOK_MODEL = "net_notebook"
NOTEBOOK_RECIPE = {"optimizer": "adadelta", "lr": 1.0, "gamma": 0.7, "batch_size": 64, "epochs": 4}


def _noise_settings(study: dict) -> list[dict]:
    return [
        n
        for spec in study["noise"]
        for n in expand_grid(spec, "kind", NOISE.get(spec["kind"]).params)
    ]


# keys of a method entry that are not the method's parameters: what the entry overrides of the
# study's own keys for its runs
ENTRY_KEYS = ("models", "optimizers", "batch_size", "max_epochs")


def method_settings(study: dict) -> list[tuple[dict, dict, dict | None]]:
    """(method entry, method setting, optimizer setting or None) of a (validated) study, in the
    listed order: each method entry's list-valued parameters expanded, times its optimizer
    settings if it trains with an optimizer (the entry's ``optimizers``, else the study's)."""
    out = []
    for entry in study["methods"]:
        method = METHODS.get(entry["name"])
        spec = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        for values in expand_grid(spec, "name", method.params):
            if method.uses_optimizer:
                specs = entry.get("optimizers", study["optimizers"])
                out += [(entry, values, o) for s in specs for o in optimizer_grid(s)]
            else:
                out.append((entry, values, None))
    return out


# --- tables -------------------------------------------------------------------------------------


def config_of(run_id: pd.Series) -> pd.Series:
    """The configuration id of each run id (its path without the seed)."""
    return run_id.str.rsplit("/seed", n=1).str[0]


def clean_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its clean test accuracy (without test-time adaptation) and its
    configuration id (``config``)."""
    out = runs[runs["condition"] == "clean"]
    if "method" in out:
        out = out[out["method"] == "source"]
    return out.assign(config=config_of(out["run_id"]))


def run_curves(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per run and history row: the cumulative examples forwarded and wall seconds, and the best
    validation accuracy so far, with the run's configuration columns."""
    h = tables["histories"][["run_id", "epoch", "examples_forwarded", "seconds", "val_accuracy"]]
    runs = clean_runs(tables["runs"])
    keys = [c for c in [*CONFIG_COLUMNS, "train_method_k"] if c in runs]
    h = h.merge(runs[["run_id", "config", "seed", *keys]], on="run_id", how="inner")
    h = h.sort_values(["run_id", "epoch"], ignore_index=True)
    by = h.groupby("run_id", sort=False)
    h["cum_examples_forwarded"] = by["examples_forwarded"].cumsum().astype(float)
    h["cum_seconds"] = by["seconds"].cumsum().astype(float)
    h["best_val_accuracy"] = by["val_accuracy"].cummax()
    h["best_val_accuracy"] = h.groupby("run_id", sort=False)["best_val_accuracy"].ffill()
    return h


BUDGET_AXES = {"examples_forwarded": "cum_examples_forwarded", "seconds": "cum_seconds"}
BUDGET_POINTS = 16


def accuracy_within(curve: pd.DataFrame, budget: float, column: str) -> float:
    """A run's best validation accuracy among its rows within ``budget`` (of ``column``,
    cumulative; row 0, the initial weights, is always within)."""
    within = curve[curve[column] <= budget]
    return float(within["best_val_accuracy"].iloc[-1]) if len(within) else math.nan


def budget(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Validation accuracy within a budget, per configuration: at 16 log-spaced budgets of
    training examples forwarded (``axis: examples_forwarded``) and of wall seconds
    (``axis: seconds``), the best validation accuracy a run reached within the budget (its
    final one once it has stopped), with its mean and 95% CI over seeds."""
    curves = run_curves(tables)
    keys = [c for c in [*CONFIG_COLUMNS, "train_method_k"] if c in curves]
    rows = []
    for axis, column in BUDGET_AXES.items():
        positive = curves.loc[curves[column] > 0, column]
        if positive.empty:
            continue
        grid = np.unique(np.geomspace(positive.min(), curves[column].max(), BUDGET_POINTS))
        for config, group in curves.groupby("config", sort=True):
            base = {"config": config, **group[keys].iloc[0].to_dict(), "axis": axis}
            per_run = [g for _, g in group.groupby("run_id", sort=True)]
            for b in grid:
                values = [accuracy_within(g, b, column) for g in per_run]
                rows.append(
                    {
                        **base,
                        "budget": float(b),
                        "metric": "val_accuracy",
                        **provenance(tables["runs"]),
                        **mean_ci(values, bounds=RANGES["accuracy"]),
                    }
                )
    return pd.DataFrame(rows)


# --- claims -------------------------------------------------------------------------------------


def _method_runs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    return runs[runs["train_method"] == name] if "train_method" in runs else runs.iloc[:0]


def _gd_learns(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity: the gradient-descent baseline classifies its test set."""
    claim = "the gd baseline learns (sanity)"
    gd = _method_runs(clean_runs(tables["runs"]), DEFAULT_METHOD)
    if gd.empty:
        reason = "the study trains no run by gd (methods)"
        return [not_applicable(claim, "-", "clean test accuracy > 0.5", reason)]
    return learns(claim, gd, ["config"])


def _frozen_stay_frozen(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity: a method that learns a mask over frozen weights never changes them: the digest of
    its frozen weights is the same in every history row of every run."""
    claim = "frozen weights stay frozen (mask methods)"
    criterion = "runs whose frozen-weight digest changed during training == 0"
    frozen = [n for n, m in METHODS.items() if m.frozen_weights]
    h = tables["histories"]
    runs = clean_runs(tables["runs"])
    runs = runs[runs["train_method"].isin(frozen)] if "train_method" in runs else runs.iloc[:0]
    if runs.empty:
        reason = (
            "the study has no method that masks frozen weights ("
            + (", ".join(frozen) or "none registered")
            + ")"
        )
        return [not_applicable(claim, "-", criterion, reason)]
    rows = []
    for config, group in runs.groupby("config", sort=True):
        mine = h[h["run_id"].isin(group["run_id"])]
        if FROZEN_DIGEST not in mine or mine[FROZEN_DIGEST].isna().any():
            reason = f"histories lack {FROZEN_DIGEST} (corruptlab.train.methods)"
            rows.append(not_applicable(claim, config, criterion, reason))
            continue
        changed = int((mine.groupby("run_id")[FROZEN_DIGEST].nunique() > 1).sum())
        detail = f"{changed} of {mine['run_id'].nunique()} runs changed their frozen weights"
        rows.append(exact(claim, config, changed, criterion, changed == 0, detail))
    return rows


ZHOU_SOURCE = (
    "Zhou, Lan, Liu & Yosinski 2019, Deconstructing Lottery Tickets: Zeros, Signs, and the "
    "Supermask (MNIST, FC 300-100)"
)


def _zhou_paper(method: str, init: object, study: dict, subject: str) -> Paper:
    signed = isinstance(init, str) and "signed" in init
    value = 0.86 if signed else 0.953
    weights = "signed-constant weights" if signed else "kaiming-initialised weights"
    setting = f"MNIST, FC 300-100, a learned Bernoulli supermask over frozen {weights}"
    differs = [our_setting(study, subject)]
    if method == EDGE_POPUP:
        differs.append("an edge-popup top-k mask (Ramanujan et al. 2020), not a Bernoulli mask")
    return Paper(value, setting, ZHOU_SOURCE, "; ".join(d for d in differs if d))


def _mask_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the supermask claims are about: edge-popup at k = 0.5, and Bernoulli supermasks."""
    if "train_method" not in runs:
        return runs.iloc[:0]
    edge = runs["train_method"] == EDGE_POPUP
    if "train_method_k" in runs:
        edge &= np.isclose(runs["train_method_k"].astype(float), EDGE_POPUP_K)
    else:
        edge &= False
    return runs[edge | (runs["train_method"] == SUPERMASK)]


def _mask_above_90(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "a supermask on frozen random weights reaches 90% test accuracy"
    quantity = "test accuracy"
    masks = _mask_runs(clean_runs(tables["runs"]))
    if masks.empty:
        reason = (
            f"the study has no {EDGE_POPUP} run with k = {EDGE_POPUP_K:g} nor {SUPERMASK} run "
            "(methods)"
        )
        return [not_applicable(claim, "-", f"{quantity} >= 0.9", reason)]
    rows = []
    for config, g in masks.groupby("config", sort=True):
        s = mean_ci(g["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])
        init = g["train_method_weights"].iloc[0] if "train_method_weights" in g else None
        paper = _zhou_paper(g["train_method"].iloc[0], init, study, g["model"].iloc[0])
        rows.append(compare(claim, config, s, quantity, ">=", 0.90, paper=paper))
    return rows


# how a claim names the optimizer of a gd baseline (registry name -> name in the text)
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adadelta": "Adadelta"}
MASK_NEAR_GD = "a supermask comes within 3 points of the same network trained by"


def _gd_reference(runs: pd.DataFrame, model: str) -> tuple[pd.DataFrame, str]:
    """The gd runs of ``model`` a mask is compared with: those trained by SGD (the papers'
    baseline) if any, else every gd run of the model; and what they are."""
    gd = _method_runs(runs, DEFAULT_METHOD)
    gd = gd[gd["model"] == model]
    sgd = gd[gd["optimizer"] == "sgd"]
    if len(sgd):
        return sgd, "SGD"
    return gd, f"the papers compare with SGD; the study trains no {model} run by gd with SGD"


def _mask_near_gd(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """A supermask's test accuracy against gd's on the same network, each row's claim naming the
    optimizer its baseline was trained with (SGD where the study has it)."""
    quantity = "test accuracy(mask) - test accuracy(gd)"
    runs = clean_runs(tables["runs"])
    masks = _mask_runs(runs)
    if masks.empty:
        claim = f"{MASK_NEAR_GD} gradient descent"
        reason = f"the study has no {EDGE_POPUP} run with k = {EDGE_POPUP_K:g} nor {SUPERMASK} run"
        return [not_applicable(claim, "-", f"{quantity} >= -0.03", reason)]
    rows = []
    for config, g in masks.groupby("config", sort=True):
        model = g["model"].iloc[0]
        ref, what = _gd_reference(runs, model)
        if ref.empty:
            claim = f"{MASK_NEAR_GD} gradient descent"
            reason = f"no gd run of {model} to compare with"
            rows.append(not_applicable(claim, config, f"{quantity} >= -0.03", reason))
            continue
        for ref_config, r in ref.groupby("config", sort=True):
            optimizer = str(r["optimizer"].iloc[0])
            claim = f"{MASK_NEAR_GD} {OPTIMIZER_NAMES.get(optimizer, optimizer)}"
            d = diff_ci(g["accuracy"], r["accuracy"], bounds=difference_range("accuracy"))
            detail = f"against {ref_config} ({what})"
            rows.append(compare(claim, f"{config} vs gd", d, quantity, ">=", -0.03, detail))
    return rows


ZHANG_PAPER = Paper(
    math.nan,
    "MNIST, OpenAI-ES at large compute: 99% test accuracy",
    "Zhang, Clune & Stanley 2017, On the Relationship Between the OpenAI Evolution Strategy and "
    "Stochastic Gradient Descent",
    "a ranking at equal wall clock, not an accuracy at large compute",
)


def _accuracy_at(curves: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """Per run: its best validation accuracy within ``seconds`` of training, and the epochs it
    completed within them."""
    rows = []
    for run, g in curves.groupby("run_id", sort=True):
        within = g.loc[g["cum_seconds"] <= seconds, "epoch"]
        rows.append(
            {
                "run_id": run,
                "config": g["config"].iloc[0],
                "train_method": g["train_method"].iloc[0],
                "accuracy": accuracy_within(g, seconds, "cum_seconds"),
                "epochs": int(within.max()) if len(within) else 0,
            }
        )
    return pd.DataFrame(rows)


def _equal_budget_ranking(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """At equal wall-clock budget (per model: the shortest total training time among the runs
    compared), OpenAI-ES > (1+1)-ES > simulated annealing > random search, and gradient descent
    beats every gradient-free method. Each method is represented by its configuration with the
    best mean validation accuracy at that budget (selected on the numbers compared: the detail
    says which, and how many epochs each seed completed within the budget). A pair in which a
    run completed no epoch within the budget is not applicable: it would compare that run's
    initial weights."""
    claim = (
        "at equal wall clock: openai_es > one_plus_one_es > simulated_annealing > "
        "random_search, each < gd"
    )
    quantity = "validation accuracy difference at equal wall clock"
    free = [n for n, m in METHODS.items() if m.gradient_free]
    pairs = list(zip(ES_CHAIN, ES_CHAIN[1:], strict=False))
    pairs += [(DEFAULT_METHOD, m) for m in dict.fromkeys([*ES_CHAIN, *free])]
    curves = run_curves(tables)
    if "train_method" not in curves:
        curves = curves.assign(train_method=DEFAULT_METHOD)
    rows = []
    ranked = sorted({m for pair in pairs for m in pair} - {DEFAULT_METHOD})
    for model, mc in curves.groupby("model", sort=True):
        present = set(mc["train_method"])
        if not present & set(ranked):
            reason = (
                f"the study trains no {model} run by a gradient-free method ({', '.join(ranked)})"
            )
            rows.append(not_applicable(claim, model, f"{quantity} > 0", reason))
            continue
        for better, worse in pairs:
            subject = f"{model}: {better} > {worse}"
            absent = [m for m in (better, worse) if m not in present]
            if absent:
                reason = f"the study trains no {model} run by {' nor '.join(absent)} (methods)"
                rows.append(not_applicable(claim, subject, f"{quantity} > 0", reason))
                continue
            both = mc[mc["train_method"].isin([better, worse])]
            seconds = float(both.groupby("run_id")["cum_seconds"].max().min())
            at = _accuracy_at(both, seconds)
            best = {}
            for m in (better, worse):
                means = at[at["train_method"] == m].groupby("config")["accuracy"].mean()
                best[m] = means.idxmax()
            a = at.loc[at["config"] == best[better], "accuracy"]
            b = at.loc[at["config"] == best[worse], "accuracy"]
            d = diff_ci(a, b, bounds=difference_range("accuracy"))
            epochs = {m: at.loc[at["config"] == best[m], "epochs"] for m in best}
            detail = (
                f"best validation accuracy within {seconds:.3g} s of training (the shortest run's "
                f"total; epochs completed within it, per seed: {better} "
                f"{'/'.join(map(str, epochs[better]))}, {worse} "
                f"{'/'.join(map(str, epochs[worse]))}): {best[better]} - {best[worse]}"
            )
            paper = ZHANG_PAPER if "openai_es" in (better, worse) else None
            untrained = [m for m in (better, worse) if (epochs[m] == 0).any()]
            if untrained:
                reason = (
                    f"{' and '.join(untrained)} completed no epoch within the {seconds:.3g} s "
                    "budget in some seed: the comparison would be of its initial weights "
                    "(longer runs give every method a budget of at least one epoch)"
                )
                criterion = f"{quantity} > 0"
                rows.append(not_applicable(claim, subject, criterion, reason, d, detail, paper))
                continue
            rows.append(compare(claim, subject, d, quantity, ">", 0, detail, paper=paper))
    return rows


NOTEBOOK_PAPER = Paper(
    0.99,
    "MNIST, the PyTorch example's Net, Adadelta lr 1.0, StepLR gamma 0.7, batch 64, 14 epochs",
    "pytorch/examples mnist/main.py (its published accuracy, about 99%)",
    "4 epochs, as the notebook runs it",
)


def _notebook_baseline(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "the notebook's gd baseline reaches 98% on full MNIST after 4 epochs"
    quantity = "test accuracy"
    r = NOTEBOOK_RECIPE
    recipe = (
        f"{NOTEBOOK_MODEL}, gd with {r['optimizer']} lr {r['lr']:g} and step gamma "
        f"{r['gamma']:g}, batch {r['batch_size']}, {r['epochs']} epochs"
    )
    criterion = f"{quantity} >= 0.98"
    if study["dataset"] != "mnist":
        reason = f"dataset is {study['dataset']!r}, the claim is about full MNIST"
        return [not_applicable(claim, recipe, criterion, reason, paper=NOTEBOOK_PAPER)]
    if study.get("in_classes"):
        reason = "the study trains on a subset of the classes (in_classes), the claim on all 10"
        return [not_applicable(claim, recipe, criterion, reason, paper=NOTEBOOK_PAPER)]
    runs = _method_runs(clean_runs(tables["runs"]), DEFAULT_METHOD)
    if len(runs) and "lr_schedule" in runs:
        at = runs[
            (runs["model"] == NOTEBOOK_MODEL)
            & (runs["optimizer"] == r["optimizer"])
            & np.isclose(runs["lr"].astype(float), r["lr"])
            & (runs["lr_schedule"] == f"step-g{fmt_number(r['gamma'])}")
            & (runs["batch_size"] == r["batch_size"])
            & (runs["max_epochs"] == r["epochs"])
        ]
    else:
        at = runs.iloc[:0]
    if at.empty:
        reason = f"the study has no run of the notebook's recipe ({recipe})"
        return [not_applicable(claim, recipe, criterion, reason, paper=NOTEBOOK_PAPER)]
    s = mean_ci(at["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])
    return [compare(claim, at["config"].iloc[0], s, quantity, ">=", 0.98, paper=NOTEBOOK_PAPER)]


def _ood_reported(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """OOD detection per method: the max-softmax AUROC with its CI, reported without a claimed
    direction (the question is open: do networks found without gradient descent know less, or
    more, about what they do not know?)."""
    claim = "OOD: max-softmax AUROC per method (reported, no direction claimed)"
    criterion = "AUROC(msp): reported"
    ood = tables["ood_runs"]
    msp = ood[ood["score"] == "msp"]
    if msp.empty:
        return [not_applicable(claim, "-", criterion, "msp is not among ood.scores")]
    rows = []
    msp = msp.assign(config=config_of(msp["run_id"]))
    for (config, ood_set), g in msp.groupby(["config", "ood_set"], sort=True):
        s = mean_ci(g["auroc"].to_numpy(float), bounds=RANGES["auroc"])
        reason = "reported with its 95% CI; no direction is claimed in advance"
        rows.append(reported(claim, f"{config} vs {ood_set}", s, "AUROC(msp)", reason))
    return rows


# --- figures ------------------------------------------------------------------------------------


def _colors(n: int) -> list:
    """``n`` distinct colours, one per configuration (tab10, or tab20 beyond 10)."""
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _outside_legend(ax) -> None:
    ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _budget_figure(tables: dict[str, pd.DataFrame], axis: str, xlabel: str) -> plt.Figure:
    plt = pyplot()
    b = tables["budget"]
    b = b[b["axis"] == axis]
    models = sorted(b["model"].unique())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            figsize=(4.2 * len(models) + 2.6, 3.2),  # the legend on the right
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        configs = sorted(b["config"].unique())
        colors = dict(zip(configs, _colors(len(configs)), strict=True))
        for ax, model in zip(axes[0], models, strict=True):
            d = b[b["model"] == model]
            for config, g in d.groupby("config", sort=True):
                g = g.sort_values("budget")
                label = config.split("/", 2)[-1]
                color = colors[config]
                ax.plot(g["budget"], 100 * g["mean"], color=color, lw=1.2, label=label)
                ax.fill_between(
                    g["budget"],
                    100 * g["ci95_low"],
                    100 * g["ci95_high"],
                    color=color,
                    alpha=0.18,
                    lw=0,
                )
            ax.set_xscale("log")
            ax.set_title(model)
            ax.set_xlabel(xlabel)
        axes[0, 0].set_ylabel("best validation accuracy (%)")
        _outside_legend(axes[0, -1])
    return fig


def accuracy_vs_examples(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Best validation accuracy within a budget of training examples forwarded (log scale), per
    method configuration: mean and 95% CI over seeds."""
    fig = _budget_figure(tables, "examples_forwarded", "training examples forwarded")
    fig.suptitle("Accuracy vs examples forwarded (mean, 95% CI over seeds)", fontsize=9)
    return fig


def accuracy_vs_seconds(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Best validation accuracy within a budget of wall seconds of training (log scale), per
    method configuration: mean and 95% CI over seeds."""
    fig = _budget_figure(tables, "seconds", "wall seconds of training")
    fig.suptitle("Accuracy vs wall-clock time (mean, 95% CI over seeds)", fontsize=9)
    return fig


def edge_popup_k(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Edge-popup test accuracy versus the kept fraction k of each layer's weights, per model
    (other hyper-parameters as separate lines): mean and 95% CI over seeds."""
    plt = pyplot()
    runs = _method_runs(clean_runs(tables["runs"]), EDGE_POPUP)
    line = runs["config"].str.replace(r"edge_popup-k[^-/]+", "edge_popup", regex=True)
    runs = runs.assign(line=line)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.4, 3.0), layout="constrained")
        for i, (name, g) in enumerate(runs.groupby("line", sort=True)):
            points = []
            for k, gk in g.groupby("train_method_k", sort=True):
                points.append(
                    {"k": k, **mean_ci(gk["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])}
                )
            p = pd.DataFrame(points)
            ax.plot(p["k"], 100 * p["mean"], marker="o", ms=3.5, color=f"C{i}", label=name)
            ax.fill_between(
                p["k"], 100 * p["ci95_low"], 100 * p["ci95_high"], color=f"C{i}", alpha=0.2, lw=0
            )
        ax.set_xlabel("k (kept fraction of each layer)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(frameon=False, fontsize=6)
        fig.suptitle("Edge-popup: accuracy vs k (mean, 95% CI over seeds)", fontsize=9)
    return fig


def config_labels(frame: pd.DataFrame) -> pd.Series:
    """A short label per row naming its configuration: the model and method, then the other
    configuration columns that vary in ``frame`` (``lr=0.1``), missing values left out."""
    fixed = ["model", "train_method_id"]
    varying = [
        c
        for c in CONFIG_COLUMNS
        if c in frame
        and c not in fixed
        and c != "train_method"
        and frame[c].nunique(dropna=False) > 1
    ]

    def label(row) -> str:
        words = [str(row[c]) for c in fixed if c in row]
        words += [
            f"{c}={fmt_number(row[c]) if isinstance(row[c], float) else row[c]}"
            for c in varying
            if pd.notna(row[c]) and row[c] != NO_OPTIMIZER["name"]
        ]
        return " ".join(words)

    return frame.apply(label, axis=1)


def trained_classifier(in_accuracy: pd.Series) -> pd.Series:
    """Whether a configuration is a trained classifier: its mean clean test accuracy (the
    in-distribution accuracy of its OOD rows) above ``LEARNS_ABOVE`` (0.5, the sanity claim's
    threshold; chance is 0.1 on ten digits). A search that ends near chance is not one, and its
    max-softmax AUROC says little about OOD detection by a classifier."""
    return in_accuracy > LEARNS_ABOVE


def ood_auroc_by_method(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Max-softmax AUROC per OOD set (groups) and method configuration (bars): mean and 95% CI
    over seeds; 0.5 is chance. Trained classifiers (``trained_classifier``) and the
    configurations that are not are drawn in separate panels, each bar's label with its test
    accuracy."""
    plt = pyplot()
    m = tables["ood_metrics"]
    m = m[(m["metric"] == "auroc") & (m["score"] == "msp")]
    m = m.assign(config=config_labels(m))
    accuracy = m.groupby("config")["in_accuracy"].mean()
    trained = trained_classifier(accuracy)
    sets = list(dict.fromkeys(m["ood_set"]))
    threshold = f"{100 * LEARNS_ABOVE:g}%"
    panels = [
        (f"trained classifiers (test accuracy > {threshold})", sorted(accuracy.index[trained])),
        (
            f"not trained classifiers (test accuracy <= {threshold})",
            sorted(accuracy.index[~trained]),
        ),
    ]
    panels = [(title, configs) for title, configs in panels if configs]
    colors = dict(zip(sorted(accuracy.index), _colors(len(accuracy)), strict=True))
    with plt.rc_context(STYLE):
        width = max(4.5, 1.1 * len(sets) + 2) + 2  # the legend on the right
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(width, 3.0 * len(panels) + 0.3),
            squeeze=False,
            layout="constrained",
        )  # one panel above the other, each with its legend
        for ax, (title, configs) in zip(axes[:, 0], panels, strict=True):
            for i, config in enumerate(configs):
                d = m[m["config"] == config].set_index("ood_set").reindex(sets)
                label = f"{config} (accuracy {100 * accuracy[config]:.0f}%)"
                _ci_bars(
                    ax, i, len(configs), d["mean"], d["ci95_low"], d["ci95_high"],
                    colors[config], label,
                )  # fmt: skip
            ax.axhline(0.5, color="#999999", lw=0.8, ls=":")
            ax.set_xticks(range(len(sets)), sets, rotation=20, ha="right")
            ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=8)
            _outside_legend(ax)
            ax.set_ylabel("AUROC (msp)")
        fig.suptitle(
            "OOD detection by training method: max-softmax AUROC (mean, 95% CI over seeds; "
            "0.5 is chance)",
            fontsize=9,
        )
    return fig


def _ci_bars(ax, i: int, n: int, mean, low, high, color, label: str) -> None:
    """Bars of group member ``i`` of ``n`` side by side at each x position (width 0.8 / n), with
    their 95% CI as error bars (none where the CI is missing)."""
    width = 0.8 / max(n, 1)
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    x = np.arange(len(mean)) + (i - (n - 1) / 2) * width
    ax.bar(x, mean, width, color=color, label=label)
    err = np.nan_to_num(np.vstack([mean - low, high - mean]))
    ax.errorbar(x, mean, yerr=err, fmt="none", ecolor="k", lw=0.8)


def mask_density(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The fraction of each layer's mask that is on at the end of training, per mask method
    configuration: mean and 95% CI over seeds."""
    plt = pyplot()
    h = tables["histories"]
    columns = [c for c in h if c.startswith(MASK_DENSITY)]
    last = h.sort_values("epoch").groupby("run_id", sort=True).tail(1)
    last = last.assign(config=config_of(last["run_id"])).dropna(subset=columns, how="all")
    configs = sorted(last["config"].unique())
    layers = [c[len(MASK_DENSITY) :] for c in columns]
    with plt.rc_context(STYLE):
        size = (max(4.5, 0.9 * len(layers) + 2) + 2, 3.0)  # the legend on the right
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        for i, (config, color) in enumerate(zip(configs, _colors(len(configs)), strict=True)):
            g = last[last["config"] == config]
            stats = [mean_ci(g[c].to_numpy(float), bounds=(0.0, 1.0)) for c in columns]
            mean, low, high = ([s[k] for s in stats] for k in ("mean", "ci95_low", "ci95_high"))
            _ci_bars(ax, i, len(configs), mean, low, high, color, config.split("/", 2)[-1])
        ax.set_xticks(range(len(layers)), layers, rotation=20, ha="right")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("mask density (fraction on)")
        _outside_legend(ax)
        fig.suptitle("Mask density per layer at the end of training (mean, 95% CI)", fontsize=9)
    return fig


def _trains_edge_popup(study: dict) -> bool:
    """Edge-popup accuracy vs k is drawn for a study that trains edge_popup at two k or more
    (one k is a point without a curve: the summary table has it)."""
    default = METHODS.get(EDGE_POPUP).values({"name": EDGE_POPUP})["k"]
    ks = {
        float(k)
        for entry in study["methods"]
        if entry["name"] == EDGE_POPUP
        for k in as_list(entry.get("k", default))
    }
    return len(ks) >= 2


def _masks_frozen_weights(study: dict) -> bool:
    """Mask density is drawn for a study with a method that masks frozen weights."""
    names = {entry["name"] for entry in study["methods"]}
    return any(n in METHODS and METHODS.get(n).frozen_weights for n in names)


class NoGd(StudyKind):
    name = "no_gd"
    doc = (
        "issue 16: training without gradient descent (supermasks, edge-popup, evolution, "
        "search) against gd, with OOD detection"
    )
    schema = SCHEMA
    steps = ("evaluate", "ood")
    tables = {
        "summary": Output(summary, ("runs",)),
        "budget": Output(budget, ("histories", "runs")),
        "ood_metrics": Output(ood_metrics, ("ood_runs",)),
        "claims": Output(claims_table, ("runs", "ood_runs", "histories")),
    }
    figures = {
        "accuracy_vs_examples": Output(accuracy_vs_examples, ("budget",)),
        "accuracy_vs_seconds": Output(accuracy_vs_seconds, ("budget",)),
        "edge_popup_k": Output(edge_popup_k, ("runs",), when=_trains_edge_popup),
        "ood_auroc_by_method": Output(ood_auroc_by_method, ("ood_metrics",)),
        "mask_density": Output(mask_density, ("histories",), when=_masks_frozen_weights),
    }
    claims = (
        _gd_learns,
        _frozen_stay_frozen,
        _mask_above_90,
        _mask_near_gd,
        _equal_budget_ranking,
        _notebook_baseline,
        _ood_reported,
    )
    ood_sets = OOD.ood_sets
    ood_scores = OOD.ood_scores

    def check(self, where: str, study: dict) -> list[str]:
        errors = OOD.check(self, where, study)
        models = [m for _, m in entries(study.get("models"), str)]
        patience = study.get("patience")
        for i, entry in entries(study.get("methods"), dict):
            w = f"{where}.methods[{i}]"
            spec = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
            errors += check_entry(w, spec, "name", METHODS)
            for j, model in entries(entry.get("models"), str):
                if model not in models:
                    errors.append(
                        f"{w}.models[{j}]: {model!r} is not among the study's models; "
                        f"accepted: {', '.join(models)}"
                    )
            epochs = [e for _, e in entries(as_list(entry.get("max_epochs", [])), int)]
            if isinstance(patience, int) and epochs and 1 <= min(epochs) < patience:
                errors.append(
                    f"{w}.max_epochs: {min(epochs)} is below the study's patience {patience}; "
                    "accepted: integers >= patience"
                )
            name = entry.get("name")
            if "optimizers" not in entry or name not in METHODS:
                continue
            if not METHODS.get(name).uses_optimizer:
                users = [n for n, m in METHODS.items() if m.uses_optimizer]
                errors.append(
                    f"{w}.optimizers: {name!r} trains without an optimizer; accepted: "
                    f"optimizers only in an entry of {', '.join(users)}"
                )
                continue
            for j, o in entries(entry["optimizers"], dict):
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
        objective = study.get("objective")
        if isinstance(objective, dict) and objective.get("name") != DEFAULT_OBJECTIVE["name"]:
            errors.append(
                f"{where}.objective: a no_gd study trains on {DEFAULT_OBJECTIVE['name']!r}; "
                "accepted: no objective key"
            )
        train = study.get("train") if isinstance(study.get("train"), dict) else {}
        others = [
            e.get("name")
            for _, e in entries(study.get("methods"), dict)
            if e.get("name") != DEFAULT_METHOD
        ]
        if train.get("packing") == "vmap" and others:
            errors.append(
                f"{where}.train.packing: vmap trains gradient descent only, and the study has "
                f"{', '.join(map(str, others))}; accepted: packing sequential"
            )
        return errors

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        """models x noise settings x method settings (with their optimizers) x batch sizes x
        max_epochs x seeds, in that order; a method entry's ``models``, ``batch_size`` and
        ``max_epochs`` replace the study's for its runs. Run paths name the epochs
        (``-e<epochs>``) when the study's ``max_epochs`` is a list or the entry sets its own."""
        out = []
        for model, noise, (entry, method, optim) in itertools.product(
            study["models"], _noise_settings(study), method_settings(study)
        ):
            if model not in entry.get("models", study["models"]):
                continue
            noise_slug = NOISE.get(noise["kind"]).slug(noise)
            method_slug = METHODS.get(method["name"]).slug(method)
            epoch_grid = isinstance(study["max_epochs"], list) or "max_epochs" in entry
            for bs, epochs, seed in itertools.product(
                as_list(entry.get("batch_size", study["batch_size"])),
                as_list(entry.get("max_epochs", study["max_epochs"])),
                seed_list(study["seeds"]),
            ):
                optim_slug = f"bs{fmt_number(bs)}" + (f"-e{epochs}" if epoch_grid else "")
                if optim is not None:
                    optim_slug = f"{optimizer_slug(optim)}-{optim_slug}"
                config_id = run_paths.config_id(model, noise_slug, method_slug, optim_slug)
                run = {
                    "study": name,
                    "kind": study["kind"],
                    "dataset": study["dataset"],
                    "split_seed": config["data"]["split_seed"],
                    "model": model,
                    "noise": noise,
                    "noise_slug": noise_slug,
                    "optimizer": dict(NO_OPTIMIZER) if optim is None else optim,
                    "optim_slug": optim_slug,
                    "train_method": method,
                    "train_method_id": method_slug,
                    "batch_size": bs,
                    "max_epochs": epochs,
                    "patience": study["patience"],
                    "seed": seed,
                    "device": config["device"],
                    "run_id": run_paths.run_id(config_id, seed),
                }
                if study.get("in_classes"):
                    run["in_classes"] = sorted(study["in_classes"])
                out.append(run)
        return out


register(NoGd())
