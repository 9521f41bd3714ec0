"""Study kind ``batchnorm``: what batch normalisation buys (Bjorck, Gomes, Selman & Weinberger
2018, "Understanding Batch Normalization"; issue 18). Models with batch norm and their twins
without it (the model registry's ``without_bn`` fact: the same widths and depths) are trained
over a log grid of learning rates, each run from a named initialisation (``init``: kaiming or
xavier, a grid axis of its own), every epoch (no early stopping; the last weights are kept), and
measured at initialisation on a few training minibatches (``probe``: per-layer gradient norms and
tails, activation mean and std per layer, relative loss vs step size;
``corruptlab.train.probes``).

"Diverged" is the trainer's status: a non-finite (NaN or inf) training loss in some epoch. A run
that stays finite but at chance is *not* diverged; it does not "train" either: the largest lr
that trains is the largest at which a run is finite *and* its clean test accuracy exceeds
``LEARNS_ABOVE`` (0.5).

Runs: inits x models x noise x optimizer settings x batch sizes x epochs x seeds; a run's path
names its initialisation after the noise: ``mlp_d10/none/kaiming/sgd-lr0.1-m0.9-wd0.0005-bs128/
seed0``. Light at import (no torch, no matplotlib).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from corruptlab.core import runs as run_paths
from corruptlab.core.checks import entries
from corruptlab.core.grid import grid_runs, optimizer_grid, training_settings
from corruptlab.report.claims import (
    LEARNS_ABOVE,
    Paper,
    claims_table,
    compare,
    exact,
    learns,
    not_applicable,
)
from corruptlab.report.stats import RANGES, UNBOUNDED, diff_ci, difference_range, mean_ci
from corruptlab.report.style import STYLE, pyplot
from corruptlab.report.tables import CONFIG_COLUMNS, OPTIM_COLUMNS, ci_rows, provenance, summary
from corruptlab.studies import Output, StudyKind, register
from corruptlab.train.inits import INITS
from corruptlab.train.models import MODELS

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

SCHEMA = yaml.safe_load(
    """
init:
  description: "weight initialisations (registry corruptlab.train.inits.INITS), a grid axis:
    every run is trained from each; run paths name it"
  type: array
  items: {type: string}
  minItems: 1
  uniqueItems: true
  default: [kaiming]
moderate_lr:
  description: "the learning rate of the sanity check (with batch norm the model learns
    there); one of the study's optimizer learning rates"
  type: number
  exclusiveMinimum: 0
  default: 0.1
probe:
  description: "the measurements at initialisation (every run, on the same minibatches for
    every learning rate of a seed)"
  type: object
  additionalProperties: false
  default: {}
  properties:
    batches:
      description: "training minibatches (of the run's batch size) measured"
      type: integer
      minimum: 1
      default: 4
    step_sizes:
      description: "step sizes eta of the relative loss L(w - eta g) / L(w)"
      type: array
      items: {type: number, exclusiveMinimum: 0}
      minItems: 1
      uniqueItems: true
      default: [0.0001, 0.001, 0.01, 0.1, 0.3, 1, 3]
"""
)

DEEP_FAMILY = "mlp"  # the claims on depth and on the lr range are the deep MLPs'
CLAIM_INIT = "kaiming"  # the lr claims are made for kaiming init
HIGH_LR = 0.3  # without batch norm the deep MLP diverges at lr >= this; with it, it trains
MAX_LR_FACTOR = 10.0  # batch norm's largest lr that trains is at least this many times higher
BEST_WITHIN = 0.01  # the best accuracy with batch norm is at least the best without, minus this
# with batch norm the per-channel |mean| at the last hidden layer is within 10^0.1 (1.26x) of the
# second's: each hidden layer reads ReLU of a standardised input, so the same in expectation; 0.1
# leaves room for a mean over 128 channels (about 0.03 in log10 per layer). Fixed before the data.
FLAT_WITHIN = 0.1
MEAN_PAPER = Paper(
    value=math.nan,
    setting="the paper's networks at initialisation, channel means on a log scale",
    source=(
        "Bjorck et al. 2018, Fig. 5: average channel means and variances vs depth at init; "
        "with BN about constant, without BN growing with depth"
    ),
    differs="a figure without a number to set beside ours; our deep MLP on MNIST digits",
)
# Bjorck et al.'s Fig. 1, as the blog post behind issue 18 reads it: lr 1e-4 is the highest an
# unnormalised ResNet-110 trains at on CIFAR-10, and the BN network is trained at 0.1 (1000x)
MAX_LR_PAPER = Paper(
    value=3.0,
    setting="ResNet-110 on CIFAR-10, SGD momentum 0.9, weight decay 5e-4, 165+ epochs",
    source="Bjorck et al. 2018, Fig. 1: lr 1e-4 without BN (the highest that trains), 0.1 with",
    differs=(
        "a lower bound (0.1 is the BN network's lr shown, not its largest); our deep MLP on "
        "MNIST for a few epochs, per-seed largest lr on a log grid"
    ),
)
PROBE = "probe."
COLUMN = re.compile(
    r"probe\.(?P<quantity>[a-z_]+)\.(?:L(?P<layer>\d+)(?:\.b(?P<batch>\d+))?|s(?P<step>.+))"
)


def twin_of(model: str) -> str | None:
    """The no-batch-norm twin a registered batch-norm model names (None otherwise)."""
    return MODELS.get(model).without_bn if model in MODELS else None


def pairs(models) -> list[tuple[str, str]]:
    """(with BN, without BN) pairs among ``models``, in the order of the first."""
    present = set(models)
    return [(m, twin_of(m)) for m in dict.fromkeys(models) if twin_of(m) in present]


def _deep(pair: tuple[str, str]) -> bool:
    return MODELS.get(pair[0]).family == DEEP_FAMILY


# --- tables -------------------------------------------------------------------------------------


def clean_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (its clean test accuracy), with ``bn`` (the model has batch norm),
    ``pair`` (the no-BN model of its pair: itself without BN), ``diverged`` and
    ``trains`` (finite and accuracy > LEARNS_ABOVE)."""
    out = runs[runs["condition"] == "clean"].copy()
    out["bn"] = out["model"].map(lambda m: bool(MODELS.get(m).batchnorm) if m in MODELS else False)
    out["pair"] = out["model"].map(lambda m: twin_of(m) or m)
    out["diverged"] = out["status"] == "diverged"
    out["trains"] = ~out["diverged"] & (out["accuracy"] > LEARNS_ABOVE)
    if "init" not in out:
        out["init"] = "default"
    return out


SWEEP_KEYS = ["study", "dataset", "pair", "model", "bn", "init", "optimizer", "lr", "batch_size"]


def lr_sweep(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model, init and learning rate: the runs, how many diverged (non-finite loss) and how
    many trained (finite, accuracy > 0.5), and the clean test accuracy's mean and 95% CI over
    the seeds that did not diverge."""
    runs = clean_runs(tables["runs"])
    rows = []
    keys = [k for k in SWEEP_KEYS if k in runs]
    for key, g in runs.groupby(keys, sort=True, dropna=False):
        finite = g[~g["diverged"]]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_runs": len(g),
                "n_diverged": int(g["diverged"].sum()),
                "n_trains": int(g["trains"].sum()),
                "first_diverged_epoch": (
                    float(g.loc[g["diverged"], "epochs_trained"].min())
                    if g["diverged"].any()
                    else math.nan
                ),
                **provenance(g),
                **mean_ci(finite["accuracy"].to_numpy(float), bounds=RANGES["accuracy"]),
            }
        )
    return pd.DataFrame(rows)


def _largest(lrs) -> float:
    lrs = list(lrs)
    return float(max(lrs)) if lrs else math.nan


def max_lr(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model and init: the largest learning rate of the grid at which no seed diverged
    (``max_lr_finite``), and at which every seed trained (finite and clean test accuracy
    > 0.5: ``max_lr_trains``); NaN where there is none. ``at_grid_top``: the value is the
    grid's largest lr (a lower bound of the model's own)."""
    sweep = tables["lr_sweep"]
    rows = []
    keys = [k for k in ("study", "dataset", "pair", "model", "bn", "init") if k in sweep]
    for key, g in sweep.groupby(keys, sort=True, dropna=False):
        top = float(g["lr"].max())
        finite = _largest(g.loc[g["n_diverged"] == 0, "lr"])
        trains = _largest(g.loc[g["n_trains"] == g["n_runs"], "lr"])
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "lr_min": float(g["lr"].min()),
                "lr_max": top,
                "max_lr_finite": finite,
                "max_lr_trains": trains,
                "at_grid_top": bool(trains == top),
                **provenance(g),
            }
        )
    return pd.DataFrame(rows)


def init_probe(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The measurements at initialisation, one row per (model, init, seed, quantity, layer,
    minibatch or step size): the history's ``probe.*`` columns of epoch 0, long. A seed's
    initial weights and probe minibatches are the same at every learning rate, so each
    (model, init, seed, batch size and noise setting: the data it is measured on) is kept once,
    its run at the smallest lr."""
    h = tables["histories"]
    columns = [c for c in h if c.startswith(PROBE)]
    runs = clean_runs(tables["runs"])
    base = ["run_id", "model", "bn", "pair", "init", "seed", "batch_size", "lr"]
    out_columns = [*base, "quantity", "layer", "batch", "step_size", "value"]
    if not columns:
        return pd.DataFrame(columns=out_columns)
    same_data = [c for c in CONFIG_COLUMNS if c in runs and c not in OPTIM_COLUMNS]
    first = h[h["epoch"] == 0][["run_id", *columns]]
    first = first.merge(runs[["run_id", *same_data, "bn", "pair", "seed"]], on="run_id")
    first = first.merge(runs[["run_id", "lr"]], on="run_id")
    first = first.sort_values([*same_data, "seed", "lr"]).drop_duplicates([*same_data, "seed"])
    long = first.melt(id_vars=base, value_vars=columns, var_name="column").dropna(subset=["value"])
    parts = long["column"].str.extract(COLUMN)
    long["quantity"] = parts["quantity"]
    long["layer"] = pd.to_numeric(parts["layer"]).astype("Int64")
    long["batch"] = pd.to_numeric(parts["batch"]).astype("Int64")
    long["step_size"] = pd.to_numeric(parts["step"])
    long = long[out_columns].sort_values(
        ["model", "init", "seed", "quantity", "layer", "batch", "step_size"], ignore_index=True
    )
    prov = provenance(runs)
    return long.assign(**prov)


def _per_run(probe: pd.DataFrame) -> pd.DataFrame:
    """One value per (run, quantity, layer, step size): a quantity measured per minibatch
    (gradient norms) is averaged over its minibatches."""
    keys = ["run_id", "model", "bn", "pair", "init", "seed", "batch_size"]
    keys += ["quantity", "layer", "step_size"]
    return probe.groupby(keys, dropna=False, sort=True, as_index=False)["value"].mean()


def init_probe_summary(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model, init, quantity and layer (or step size): the mean and 95% CI over seeds of
    log10 of the run's value (``scale`` log10; gradient norms: the run's mean over its
    minibatches first), the values clipped to [1e-12, 1e12] (a non-finite loss after a step
    counts as 1e12): these quantities vary by orders of magnitude between layers and models."""
    probe = tables["init_probe"]
    if probe.empty:
        return pd.DataFrame(
            columns=["model", "bn", "pair", "init", "quantity", "layer", "step_size", "mean"]
        )
    per_run = _per_run(probe)
    per_run["value"] = np.log10(np.clip(per_run["value"].to_numpy(float), 1e-12, 1e12))
    per_run["scale"] = "log10"
    keys = ["model", "bn", "pair", "init", "batch_size", "quantity", "scale", "layer", "step_size"]
    rows = ci_rows(per_run.assign(**provenance(probe)), keys, "value", {}, metric="value")
    return pd.DataFrame(rows)


# --- claims -------------------------------------------------------------------------------------


def _pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]} vs {pair[1]}"


def _bn_learns(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity first: with batch norm the model learns at a moderate learning rate (clean test
    accuracy well above chance), so that the comparisons below compare a working model."""
    claim = "with batch norm the model learns at a moderate lr (sanity)"
    runs = clean_runs(tables["runs"])
    lr = float(study["moderate_lr"])
    at = runs[runs["bn"] & np.isclose(runs["lr"], lr)]
    if at.empty:
        reason = f"the study trains no batch-norm model at lr {lr:g}"
        return [not_applicable(claim, "-", f"clean test accuracy > {LEARNS_ABOVE:g}", reason)]
    subject = at["model"] + ", " + at["init"] + f" init, lr {lr:g}"
    return learns(claim, at.assign(subject=subject), ["subject"])


def _seed_max_lr(g: pd.DataFrame) -> pd.Series:
    """Per seed, the largest lr at which that seed's run trained (NaN: at none)."""
    return g[g["trains"]].groupby("seed")["lr"].max().reindex(sorted(g["seed"].unique()))


def _max_lr_ratio(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """The largest learning rate that trains (finite, accuracy > 0.5) is at least 10x higher
    with batch norm than without (deep MLPs, kaiming init): log10 of each seed's largest lr
    with BN minus without, Welch CI over seeds, against log10(10) = 1."""
    claim = (
        f"the largest lr that trains is >= {MAX_LR_FACTOR:g}x higher with batch norm "
        f"(deep MLP, {CLAIM_INIT} init)"
    )
    quantity = "log10(largest lr that trains): with BN - without"
    criterion = f"{quantity} >= {math.log10(MAX_LR_FACTOR):g}"
    runs = clean_runs(tables["runs"])
    deep = [p for p in pairs(study["models"]) if _deep(p)]
    if not deep or CLAIM_INIT not in set(runs["init"]):
        reason = f"needs a deep MLP pair (with/without BN) trained from {CLAIM_INIT} init"
        return [not_applicable(claim, "-", criterion, reason)]
    rows = []
    top = float(runs["lr"].max())
    for pair in deep:
        at = runs[runs["init"] == CLAIM_INIT]
        with_bn = _seed_max_lr(at[at["model"] == pair[0]])
        without = _seed_max_lr(at[at["model"] == pair[1]])
        subject = f"{_pair_name(pair)}, {CLAIM_INIT}"
        detail = (
            f"largest lr that trains per seed: with BN {_fmt_lrs(with_bn)}, without "
            f"{_fmt_lrs(without)} (grid top {top:g}: a value there is a lower bound)"
        )
        if without.isna().all() or with_bn.isna().all():
            which = "without" if without.isna().all() else "with"
            reason = f"the model {which} batch norm trains at no lr of the grid: no ratio"
            rows.append(not_applicable(claim, subject, criterion, reason, detail=detail))
            continue
        s = diff_ci(np.log10(with_bn.dropna()), np.log10(without.dropna()))
        threshold = math.log10(MAX_LR_FACTOR)
        rows.append(
            compare(claim, subject, s, quantity, ">=", threshold, detail, paper=MAX_LR_PAPER)
        )
    return rows


def _fmt_lrs(lrs: pd.Series) -> str:
    return "/".join("none" if math.isnan(v) else f"{v:g}" for v in lrs)


def _diverges_at_high_lr(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Without batch norm the deep MLP diverges (non-finite loss) at every lr >= 0.3 of the
    grid, every seed (an exact count); with batch norm it trains there (accuracy's CI over
    seeds above 0.5, per lr)."""
    claim_off = f"without batch norm the deep MLP diverges at lr >= {HIGH_LR:g} ({CLAIM_INIT})"
    claim_on = f"with batch norm the deep MLP trains at lr >= {HIGH_LR:g} ({CLAIM_INIT})"
    criterion = f"share of runs at lr >= {HIGH_LR:g} with a non-finite loss == 1"
    runs = clean_runs(tables["runs"])
    deep = [p for p in pairs(study["models"]) if _deep(p)]
    high = runs[(runs["lr"] >= HIGH_LR - 1e-12) & (runs["init"] == CLAIM_INIT)]
    if not deep or high.empty:
        reason = f"needs a deep MLP pair trained from {CLAIM_INIT} init at lr >= {HIGH_LR:g}"
        return [not_applicable(claim_off, "-", criterion, reason)]
    rows = []
    for pair in deep:
        off = high[high["model"] == pair[1]]
        share = float(off["diverged"].mean())
        stuck = int((~off["diverged"] & ~off["trains"]).sum())
        detail = (
            f"{int(off['diverged'].sum())} of {len(off)} runs diverged at lr "
            f"{'/'.join(f'{v:g}' for v in sorted(off['lr'].unique()))}; {stuck} finite but "
            "not trained (accuracy <= 0.5, not counted as diverged)"
        )
        rows.append(exact(claim_off, pair[1], share, criterion, share == 1.0, detail))
        on = high[high["model"] == pair[0]]
        subject = on["model"] + ", lr " + on["lr"].map(lambda v: f"{v:g}")
        rows += learns(claim_on, on.assign(subject=subject), ["subject"])
    return rows


def _best_accuracy(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """The best clean test accuracy over the lr grid with batch norm is at least the best
    without, within 1 point: each model's best lr (the highest mean over seeds among the lrs
    where no seed diverged, selected on the numbers compared), BN minus no-BN, Welch CI."""
    claim = "the best accuracy over the lr grid with batch norm is >= the best without (-1 point)"
    quantity = "best clean test accuracy: with BN - without"
    runs = clean_runs(tables["runs"])
    found = pairs(study["models"])
    if not found:
        return [not_applicable(claim, "-", f"{quantity} >= {-BEST_WITHIN:g}", "no BN pair")]
    rows = []
    for pair in found:
        for init, at in runs.groupby("init", sort=True):
            best, accs = {}, {}
            for model in pair:
                m = at[at["model"] == model]
                ok = m.groupby("lr").filter(lambda g: not g["diverged"].any())
                if ok.empty:
                    break
                means = ok.groupby("lr")["accuracy"].mean()
                best[model] = float(means.idxmax())
                accs[model] = ok.loc[ok["lr"] == best[model], "accuracy"].to_numpy(float)
            subject = f"{_pair_name(pair)}, {init}"
            if len(best) < 2:
                reason = "a model of the pair diverged at every lr"
                rows.append(not_applicable(claim, subject, f"{quantity} >= -0.01", reason))
                continue
            s = diff_ci(accs[pair[0]], accs[pair[1]], bounds=difference_range("accuracy"))
            detail = f"best lr with BN {best[pair[0]]:g}, without {best[pair[1]]:g}"
            rows.append(compare(claim, subject, s, quantity, ">=", -BEST_WITHIN, detail))
    return rows


def _growth(per_run: pd.DataFrame, quantity: str) -> pd.Series:
    """Per run: log10 of ``quantity`` at the last hidden layer over the second layer (the first
    layer reads the input and the last is the classifier: both differ in shape); NaN with
    fewer than 3 hidden layers."""
    q = per_run[per_run["quantity"] == quantity]
    out = {}
    for run_id, g in q.groupby("run_id", sort=True):
        values = g.set_index("layer")["value"].sort_index()
        n = int(values.index.max())
        if n < 4:
            out[run_id] = math.nan
            continue
        out[run_id] = float(np.log10(values[n - 1] / values[2]))
    return pd.Series(out, dtype=float)


def _depth_growth(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """At initialisation, without batch norm, the gradient norm (or the activation std) grows
    with depth, and not with batch norm: per run, log10 of the value at the last hidden layer
    over the second layer; without BN > 0 (CI over seeds), and with BN below without (Welch
    CI of the difference). The issue's "or": either quantity's two rows support the claim.
    Then the per-channel |mean| (issue 25): it grows without BN (> 0) and stays flat with BN
    (the mean over seeds of |log10 growth| < FLAT_WITHIN), Bjorck et al.'s Fig. 5."""
    probe = tables["init_probe"]
    criterion = "log10(last hidden / second layer) > 0"
    deep = [p for p in pairs(study["models"]) if _deep(p)]
    if probe.empty or not deep:
        claim = "at init, without batch norm, gradient norms or activation std grow with depth"
        return [not_applicable(claim, "-", criterion, "no deep MLP pair measured at init")]
    per_run = _per_run(probe)
    rows = []
    for quantity, word in (
        ("grad_norm", "gradient norms"),
        ("act_std", "activation std"),
        ("act_mean", "per-channel activation |means|"),
    ):
        claim = f"at init, without batch norm, {word} grow with depth"
        claim_bn = f"at init, {word} grow less with batch norm than without"
        if quantity == "act_mean":
            claim_bn = f"at init, with batch norm, {word} stay flat with depth"
        for pair in deep:
            for init, at in per_run.groupby("init", sort=True):
                growth = {
                    m: _growth(at[at["model"] == m], quantity).dropna().to_numpy() for m in pair
                }
                subject = f"{pair[1]}, {init}"
                detail = (
                    f"log10 growth per seed: without BN {_fmt(growth[pair[1]])}; with BN "
                    f"{_fmt(growth[pair[0]])}"
                )
                s = mean_ci(growth[pair[1]], bounds=UNBOUNDED)
                quantity_words = f"log10({word} last hidden / second layer) without BN"
                paper = MEAN_PAPER if quantity == "act_mean" else None
                rows.append(compare(claim, subject, s, quantity_words, ">", 0, detail, paper))
                if quantity == "act_mean":
                    s = mean_ci(np.abs(growth[pair[0]]), bounds=(0, math.inf))
                    q2 = f"|log10({word} last hidden / second layer)| with BN"
                    subject = f"{pair[0]}, {init}"
                    rows.append(compare(claim_bn, subject, s, q2, "<", FLAT_WITHIN, detail, paper))
                    continue
                d = diff_ci(growth[pair[1]], growth[pair[0]])
                q2 = f"log10 growth of {word}: without BN - with BN"
                rows.append(compare(claim_bn, f"{_pair_name(pair)}, {init}", d, q2, ">", 0, detail))
    return rows


def _heavier_tails(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Bjorck et al.'s Fig. 2: at initialisation the gradient entries of a middle layer are
    heavier-tailed without batch norm: log10 of q99.9 / q50 of their absolute values (4.9 for
    Gaussian entries), without BN minus with BN, Welch CI over seeds, per pair and init."""
    claim = "at init, the gradients of a middle layer are heavier-tailed without batch norm"
    quantity = "log10(q99.9 / q50 of |gradient|): without BN - with BN"
    probe = tables["init_probe"]
    found = pairs(study["models"])
    if probe.empty or not found:
        return [not_applicable(claim, "-", f"{quantity} > 0", "no BN pair measured at init")]
    tails = _per_run(probe)
    tails = tails[tails["quantity"] == "grad_tail"]
    rows = []
    for pair in found:
        for init, at in tails.groupby("init", sort=True):
            layer = (int(at.loc[at["model"] == pair[1], "layer"].max()) + 1) // 2
            values = {
                m: np.log10(
                    at[(at["model"] == m) & (at["layer"] == layer)]["value"].to_numpy(float)
                )
                for m in pair
            }
            s = diff_ci(values[pair[1]], values[pair[0]])
            detail = f"layer {layer}; log10 tail per seed: without BN {_fmt(values[pair[1]])}, "
            detail += f"with BN {_fmt(values[pair[0]])} (Gaussian: {math.log10(4.9):.2f})"
            subject = f"{_pair_name(pair)}, {init}"
            rows.append(compare(claim, subject, s, quantity, ">", 0, detail))
    return rows


def _fmt(values) -> str:
    return "/".join(f"{v:+.2f}" for v in values) or "none"


def _not_claimed_small_lr(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Deliberately not claimed: that batch norm wins at a small, equal learning rate. The sign
    flips with the initialisation (issue 18's CPU calibration: 0.53 without vs 0.18 with BN at
    lr 1e-4 with kaiming init, the reverse with xavier); the row shows this study's numbers."""
    claim = "batch norm wins at a small, equal lr (NOT claimed: flips with the initialisation)"
    runs = clean_runs(tables["runs"])
    rows = []
    lr = float(runs["lr"].min()) if len(runs) else math.nan
    for pair in pairs(study["models"]):
        for init, at in runs[np.isclose(runs["lr"], lr)].groupby("init", sort=True):
            a = at.loc[(at["model"] == pair[0]) & ~at["diverged"], "accuracy"]
            b = at.loc[(at["model"] == pair[1]) & ~at["diverged"], "accuracy"]
            s = diff_ci(a, b, bounds=difference_range("accuracy"))
            reason = (
                "deliberately not claimed: the sign of this difference depends on the "
                "initialisation (see the other init's row)"
            )
            rows.append(
                not_applicable(
                    claim,
                    f"{_pair_name(pair)}, {init}, lr {lr:g}",
                    "accuracy with BN - without > 0",
                    reason,
                    stats=s,
                )
            )
    return rows


# --- figures ------------------------------------------------------------------------------------

BN_COLORS = {True: "tab:blue", False: "tab:red"}


def _label(bn: bool) -> str:
    return "with BN" if bn else "without BN"


def _panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (pair, init)."""
    return [
        (f"{pair} (+BN), {init} init", g)
        for (pair, init), g in frame.groupby(["pair", "init"], sort=True)
    ]


def _grid(n: int, width: float = 3.6, height: float = 2.8):
    plt = pyplot()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(max(width * cols + 0.6, 5.6), height * rows + 0.7),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def accuracy_vs_lr(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Final clean test accuracy vs learning rate with and without batch norm, per pair and
    init: mean and 95% CI over the seeds that did not diverge; an x at the bottom marks a
    learning rate where some seed diverged (non-finite loss; the count beside it), and a hollow
    marker a mean over fewer seeds than the study's (the others diverged; one seed: no CI)."""
    plt = pyplot()
    sweep = tables["lr_sweep"]
    panels = _panels(sweep)
    seeds = int(sweep["n_runs"].max()) if len(sweep) else 0
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels))
        for ax, (title, g) in zip(axes, panels, strict=True):
            for bn, d in g.groupby("bn", sort=False):
                d = d.sort_values("lr")
                color, label = BN_COLORS[bool(bn)], f"{d['model'].iloc[0]} ({_label(bn)})"
                ok = d[d["n"] > 0]
                ax.plot(ok["lr"], 100 * ok["mean"], color=color, label=label)
                ax.fill_between(
                    ok["lr"], 100 * ok["ci95_low"], 100 * ok["ci95_high"], color=color, alpha=0.2
                )
                full = ok["n"] == ok["n_runs"]
                for points, face in ((ok[full], color), (ok[~full], "white")):
                    ax.plot(points["lr"], 100 * points["mean"], ls="none", marker="o", ms=3.5,
                            color=color, mfc=face, zorder=3)  # fmt: skip
                div = d[d["n_diverged"] > 0]
                y = 2 if bn else -4
                ax.scatter(div["lr"], [y] * len(div), marker="x", color=color, s=30, zorder=3)
                for lr, k, n in zip(div["lr"], div["n_diverged"], div["n_runs"], strict=True):
                    ax.annotate(f"{k}/{n}", (lr, y), xytext=(3, 2), textcoords="offset points",
                                fontsize=6, color=color)  # fmt: skip
            ax.axhline(10, color="#999999", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_ylim(-8, 102)
            ax.set_title(title)
            ax.set_xlabel("learning rate (SGD, momentum 0.9)")
            ax.set_ylabel("clean test accuracy (%)")
            ax.legend(frameon=False, loc="center left", fontsize=7)
        title = (
            "Accuracy vs learning rate (mean, 95% CI over non-diverged seeds;\n"
            "x: seeds diverged at that lr; dotted: chance)"
        )
        if ((sweep["n"] > 0) & (sweep["n"] < sweep["n_runs"])).any():
            title += f"\nhollow: mean over fewer than {seeds} seeds (the others diverged)"
        fig.suptitle(title, fontsize=9)
    return fig


def grad_norm_hist(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Histograms at initialisation of the per-minibatch gradient norm of three layers (the
    second, a middle one and the last hidden layer), with and without batch norm, over the
    probe minibatches and seeds (log10 scale), per pair and init."""
    plt = pyplot()
    probe = tables["init_probe"]
    g = probe[probe["quantity"] == "grad_norm"]
    panels = _panels(g) if len(g) else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            max(len(panels), 1), 3, figsize=(9.6, 2.4 * max(len(panels), 1) + 0.6),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for row, (title, d) in zip(axes, panels, strict=False):
            n = int(d["layer"].max())
            layers = sorted({2, max(2, (n + 1) // 2), max(2, n - 1)})
            for ax, layer in zip(row, layers, strict=False):
                at = d[d["layer"] == layer]
                values = np.log10(at["value"].clip(lower=1e-30))
                bins = np.linspace(values.min() - 0.1, values.max() + 0.1, 25)
                for bn, b in at.groupby("bn", sort=False):
                    ax.hist(
                        np.log10(b["value"].clip(lower=1e-30)), bins=bins, alpha=0.55,
                        color=BN_COLORS[bool(bn)], label=f"{b['model'].iloc[0]}",
                    )  # fmt: skip
                ax.set_title(f"{title}: layer {layer} of {n}", fontsize=8)
                ax.set_xlabel("log10 gradient norm")
            for ax in row[len(layers) :]:
                ax.set_visible(False)
            row[0].set_ylabel("minibatches x seeds")
            row[0].legend(frameon=False, fontsize=7)
        fig.suptitle(
            "Per-layer gradient norms at initialisation (one count per probe minibatch and seed;\n"
            "layers numbered from the input, the last is the classifier)",
            fontsize=9,
        )
    return fig


def _vs_depth(
    tables: dict[str, pd.DataFrame], columns: tuple[tuple[str, str], ...], suptitle: str
) -> plt.Figure:
    """One row per pair and init, one column per (quantity, y label) of ``columns``: log10 of
    the quantity per layer, mean and 95% CI over seeds (``init_probe_summary``)."""
    plt = pyplot()
    s = tables["init_probe_summary"]
    s = s[s["quantity"].isin([q for q, _ in columns])]
    panels = _panels(s) if len(s) else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            max(len(panels), 1), len(columns), figsize=(7.6, 2.6 * max(len(panels), 1) + 0.7),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for row, (title, d) in zip(axes, panels, strict=False):
            for ax, (quantity, label) in zip(row, columns, strict=True):
                _lines(ax, d[d["quantity"] == quantity], "layer")
                ax.set_title(title, fontsize=8)
                ax.set_xlabel("layer (1 = first, last = classifier)")
                ax.set_ylabel(label)
            row[0].legend(frameon=False, fontsize=7)
        fig.suptitle(suptitle, fontsize=9)
    return fig


def gradients_vs_depth(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Gradients per layer at initialisation, per pair and init (rows): the gradient norm of
    each layer's weight (left) and the tail of its entries, q99.9 / q50 of their absolute
    values (right; dotted: 4.9, Gaussian entries), as log10, mean and 95% CI over seeds."""
    fig = _vs_depth(
        tables,
        (("grad_norm", "log10 gradient norm"), ("grad_tail", "log10 q99.9 / q50 of |gradient|")),
        "Gradients per layer at initialisation (mean of log10 over seeds, 95% CI;\n"
        "dotted: the tail of Gaussian entries)",
    )
    for ax in fig.axes[1::2]:
        ax.axhline(math.log10(4.9), color="#999999", lw=0.8, ls=":")
    return fig


def _lines(ax, d: pd.DataFrame, x: str) -> None:
    for bn, b in d.groupby("bn", sort=False):
        b = b.sort_values(x)
        color = BN_COLORS[bool(bn)]
        xs, mean = b[x].to_numpy(float), b["mean"].to_numpy(float)
        low, high = b["ci95_low"].to_numpy(float), b["ci95_high"].to_numpy(float)
        ax.plot(xs, mean, marker="o", ms=3, color=color, label=b["model"].iloc[0])
        ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0)


def activations_vs_depth(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Activations per layer at initialisation, per pair and init (rows): per linear or conv
    layer's output (batch norm's input in the BN model), the mean over its channels of each
    channel's std (left) and of each channel's absolute mean (right), over the probe minibatches,
    log10, mean and 95% CI over seeds."""
    return _vs_depth(
        tables,
        (("act_std", "log10 activation std"), ("act_mean", "log10 activation |mean|")),
        "Activations per layer at initialisation: per-channel std and |mean|\n"
        "(mean over channels; mean of log10 over seeds, 95% CI)",
    )


def relative_loss_vs_step(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The loss after one step of size eta along the negative gradient, relative to the loss
    before, L(w - eta g) / L(w), at initialisation on the probe minibatches: mean of log10 and
    its 95% CI over seeds (a non-finite loss counts as 1e12), per pair and init; below 1 the
    step helped."""
    plt = pyplot()
    s = tables["init_probe_summary"]
    s = s[s["quantity"] == "relative_loss"]
    panels = _panels(s) if len(s) else []
    with plt.rc_context(STYLE):
        fig, axes = _grid(max(len(panels), 1))
        for ax, (title, d) in zip(axes, panels, strict=False):
            _lines(ax, d, "step_size")
            ax.axhline(0, color="#999999", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_title(title)
            ax.set_xlabel("step size eta")
            ax.set_ylabel("log10 L(w - eta g) / L(w)")
            ax.legend(frameon=False, fontsize=7)
        fig.suptitle(
            "Loss after one gradient step relative to before, at initialisation\n"
            "(mean of log10 over seeds, 95% CI; dotted: unchanged)",
            fontsize=9,
        )
    return fig


def _has_probe(study: dict) -> bool:
    return bool(pairs(study["models"]))


class Batchnorm(StudyKind):
    name = "batchnorm"
    doc = (
        "Bjorck et al. 2018: what batch norm buys: largest lr, divergence, gradients and "
        "activations at init, with and without BN"
    )
    schema = SCHEMA
    uses_patience = False  # its runs train every epoch and keep their last weights
    tables = {
        "summary": Output(summary, ("runs",)),
        "lr_sweep": Output(lr_sweep, ("runs",)),
        "max_lr": Output(max_lr, ("lr_sweep",)),
        "init_probe": Output(init_probe, ("histories", "runs")),
        "init_probe_summary": Output(init_probe_summary, ("init_probe",)),
        "claims": Output(claims_table, ("runs", "init_probe")),
    }
    figures = {
        "accuracy_vs_lr": Output(accuracy_vs_lr, ("lr_sweep",)),
        "grad_norm_hist": Output(grad_norm_hist, ("init_probe",), when=_has_probe),
        "gradients_vs_depth": Output(gradients_vs_depth, ("init_probe_summary",), when=_has_probe),
        "activations_vs_depth": Output(
            activations_vs_depth, ("init_probe_summary",), when=_has_probe
        ),
        "relative_loss_vs_step": Output(
            relative_loss_vs_step, ("init_probe_summary",), when=_has_probe
        ),
    }
    claims = (
        _bn_learns,
        _max_lr_ratio,
        _diverges_at_high_lr,
        _best_accuracy,
        _depth_growth,
        _heavier_tails,
        _not_claimed_small_lr,
    )

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        for i, name in entries(study.get("init"), str):
            if name not in INITS:
                errors.append(
                    f"{where}.init[{i}]: unknown initialisation {name!r}; accepted: "
                    f"{', '.join(INITS.names())}"
                )
        lrs = set()
        for _, spec in entries(study.get("optimizers"), dict):
            try:
                lrs |= {float(o["lr"]) for o in optimizer_grid(spec) if "lr" in o}
            except Exception:  # noqa: BLE001 (the optimizer's own check reports it)
                continue
        moderate = study.get("moderate_lr", SCHEMA["moderate_lr"]["default"])
        if (
            lrs
            and isinstance(moderate, (int, float))
            and not any(math.isclose(moderate, lr) for lr in lrs)
        ):
            errors.append(
                f"{where}.moderate_lr: {moderate:g} is not one of the study's learning rates; "
                f"accepted: {', '.join(f'{v:g}' for v in sorted(lrs))}"
            )
        train = study.get("train") if isinstance(study.get("train"), dict) else {}
        if train.get("packing") == "vmap":
            errors.append(
                f"{where}.train.packing: a batchnorm study measures each run at initialisation "
                "on its own model, which vmap's stacked seeds do not give; accepted: sequential"
            )
        settings = training_settings(study, any_lr=True)
        if len(settings) > 1:
            errors.append(
                f"{where}: trains each model in {len(settings)} settings besides its learning "
                f"rates ({', '.join(settings[:4])}{', ...' if len(settings) > 4 else ''}), but "
                "its tables, claims and figures compare runs per model, init and lr and would "
                "average over them; accepted: one noise setting and one optimizer setting apart "
                "from lr (one momentum, weight_decay, batch_size, max_epochs) per batchnorm "
                "study (put other settings in studies of their own)"
            )
        models = [m for _, m in entries(study.get("models"), str) if m in MODELS]
        if models and not pairs(models):
            twins = [f"{m} with {MODELS.get(m).without_bn}" for m in MODELS if twin_of(m)]
            errors.append(
                f"{where}.models: no batch-norm model together with its twin without batch norm; "
                f"accepted: a pair such as {', '.join(twins)}"
            )
        return errors

    def run_extras(self, study: dict, run: dict) -> dict:
        """Every epoch trained (patience = the epochs), the last weights kept, and the
        measurements at initialisation (``probe``)."""
        return {
            "patience": run["max_epochs"],
            "restore_best": False,
            "probe": dict(study["probe"]),
        }

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        """inits x the grid (models x noise x optimizers x batch sizes x epochs x seeds); the
        init is a path segment after the noise."""
        out = []
        for init in study["init"]:
            for run in grid_runs(name, study, config):
                config_id = run_paths.config_id(
                    run["model"], run["noise_slug"], init, run["optim_slug"]
                )
                run = {**run, "init": init, "run_id": run_paths.run_id(config_id, run["seed"])}
                out.append({**run, **self.run_extras(study, run)})
        return out


register(Batchnorm())
