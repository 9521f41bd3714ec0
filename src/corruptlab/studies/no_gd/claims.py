"""The no_gd kind's claims (sanity, supermasks against gd, the ranking at equal wall clock, the
notebook's baseline, OOD reported) and the papers they are compared with."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from corruptlab.core.params import fmt_number
from corruptlab.report.claims import (
    Paper,
    compare,
    exact,
    learns,
    not_applicable,
    our_setting,
    reported,
)
from corruptlab.report.stats import RANGES, diff_ci, difference_range, mean_ci
from corruptlab.studies.no_gd.tables import (
    EDGE_POPUP,
    EDGE_POPUP_K,
    SUPERMASK,
    _method_runs,
    accuracy_within,
    clean_runs,
    config_of,
    run_curves,
)
from corruptlab.train.methods import DEFAULT_METHOD, FROZEN_DIGEST, METHODS

# the gradient-free methods from the strongest expected to the weakest at equal wall clock
ES_CHAIN = ("openai_es", "one_plus_one_es", "simulated_annealing", "random_search")
# the notebook's network and recipe (the PyTorch MNIST example with 4 epochs)
NOTEBOOK_MODEL = "net_notebook"
NOTEBOOK_RECIPE = {"optimizer": "adadelta", "lr": 1.0, "gamma": 0.7, "batch_size": 64, "epochs": 4}


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
    """Zhou et al.'s learned supermask on MNIST FC (95.3%, their section 5). Their abstract's 86%
    is another thing: a mask chosen by a criterion ("large final, same sign") from a trained copy
    of the network, over signed-constant weights, not a learned mask; no claim cites it."""
    setting = (
        "MNIST, FC 300-100, a Bernoulli supermask learned by SGD over frozen random weights "
        "(their code's init: Glorot normal)"
    )
    differs = [our_setting(study, subject)]
    if isinstance(init, str) and init:
        differs.append(f"our frozen weights: {init.replace('_', ' ')}")
    if method == EDGE_POPUP:
        differs.append("an edge-popup top-k mask (Ramanujan et al. 2020), not a Bernoulli mask")
    return Paper(0.953, setting, ZHOU_SOURCE, "; ".join(d for d in differs if d))


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
