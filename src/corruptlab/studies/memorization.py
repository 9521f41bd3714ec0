"""Per-example difficulty across seeds (Arpit et al. 2017, *A Closer Look at Memorization in Deep
Networks*, Figure 1).

Many runs of the same small job (one per seed: its own initialisation and data order) classify
the same examples. Per example, the share of seeds that classify it correctly, P(correct), is a
count out of ``n_seeds``. If every example were equally hard (what pure memorization predicts,
and what randX shows), these counts would be i.i.d. Binomial(n_seeds, p) with p the mean
accuracy; easy and hard examples (real data, randY) spread them further than that.

- ``per_example_p_correct``: the long table of (group, seed, example, correct) -> P(correct) per
  (group, example), checked for missing and duplicated seeds;
- ``sorted_curve`` and ``binomial_reference``: the sorted P(correct) curve of a group and the
  curve expected under Binomial(n_seeds, p), for the paper's figure;
- ``binomial_gof`` (and ``binomial_gof_by``, per group): a chi-square goodness-of-fit test of the
  counts against Binomial(n_seeds, p), with ``chi2_sf`` its survival function;
- ``hardest_and_easiest``: the k examples at each end of the curve, for an image grid.

Only numpy, pandas and the standard library: the binomial pmf and the chi-square survival
function are written here (log-gamma, and the regularized incomplete gamma function), so that
aggregating needs neither torch nor scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from corruptlab.core.checks import entries
from corruptlab.core.grid import as_list
from corruptlab.report.claims import by_test, claims_table, compare, learns, not_applicable
from corruptlab.report.stats import diff_ci, difference_bounds, difference_range
from corruptlab.report.style import STYLE, panel_grid, plot_band, pyplot
from corruptlab.report.tables import ci_rows
from corruptlab.studies import Output, StudyKind, register

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

MIN_EXPECTED = 5.0  # every pooled bin of the goodness-of-fit test expects at least this many
_EPS = 1e-15  # relative accuracy of the incomplete gamma iterations
_TINY = 1e-300  # keeps the continued fraction away from division by zero
_QUANTILE_TOL = 1e-12  # a cdf within this of a plotting position counts as reaching it

TABLE_COLUMNS = ("example", "n_seeds", "n_correct", "p_correct")


# ------------------------------------------------------------------- per-example aggregation


def _as_by(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def per_example_p_correct(
    df: pd.DataFrame, by: str | Sequence[str] = ("variant", "epochs")
) -> pd.DataFrame:
    """P(correct) per (group, example) over the seeds of its group.

    ``df`` is long: columns ``by`` + ``seed``, ``example``, ``correct`` (0/1 or bool), one row per
    (group, seed, example). Every example of a group must be present once for every seed seen in
    that group (groups may have different seeds); a missing or duplicated (seed, example) raises
    ``ValueError`` naming the first offenders.

    Returns a tidy frame, sorted by ``by`` and ``example``, with columns ``by`` + ``example``,
    ``n_seeds`` (int), ``n_correct`` (int) and ``p_correct`` (= n_correct / n_seeds, float).
    """
    keys = _as_by(by)
    need = [*keys, "seed", "example", "correct"]
    missing_cols = [c for c in need if c not in df.columns]
    if missing_cols:
        raise ValueError(
            f"per_example_p_correct: missing column(s) {missing_cols}; "
            f"need {need}, got {list(df.columns)}"
        )
    data = df[need].copy()
    null_cols = [c for c in need if data[c].isna().any()]
    if null_cols:
        raise ValueError(f"per_example_p_correct: null values in column(s) {null_cols}")
    correct = data["correct"]
    if correct.dtype != bool:
        values = pd.to_numeric(correct, errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            shown = sorted({repr(v) for v in correct[bad].head(5)})
            raise ValueError(
                "per_example_p_correct: column 'correct' must be 0/1 or bool, got "
                + ", ".join(shown)
            )
        correct = values
    data["correct"] = correct.astype("int64")

    dup = data.duplicated([*keys, "seed", "example"], keep=False)
    if dup.any():
        rows = data.loc[dup, [*keys, "seed", "example"]].drop_duplicates().head(5)
        raise ValueError(
            f"per_example_p_correct: {int(dup.sum())} rows duplicate a (group, seed, example); "
            f"first: {rows.to_dict('records')}"
        )

    seeds_of_group = data.groupby(keys, sort=False)["seed"].unique() if keys else None
    counts = data.groupby([*keys, "example"], sort=True).agg(
        n_seeds=("seed", "size"), n_correct=("correct", "sum")
    )
    counts = counts.reset_index()
    if keys:
        expected = data.groupby(keys, sort=False)["seed"].nunique().rename("_expected")
        counts = counts.merge(expected, left_on=keys, right_index=True, how="left")
    else:
        counts["_expected"] = data["seed"].nunique()
    short = counts[counts["n_seeds"] != counts["_expected"]]
    if len(short):
        problems = []
        for row in short.head(5).itertuples(index=False):
            group = tuple(getattr(row, k) for k in keys)
            all_seeds = (
                seeds_of_group.loc[group if len(keys) > 1 else group[0]]
                if keys
                else data["seed"].unique()
            )
            mask = data["example"] == row.example
            for k, v in zip(keys, group, strict=True):
                mask &= data[k] == v
            missing = sorted(
                set(pd.Series(all_seeds).tolist()) - set(data.loc[mask, "seed"].tolist())
            )
            where = dict(zip(keys, group, strict=True))
            problems.append(f"{where} example {row.example}: missing seed(s) {missing}")
        raise ValueError(
            f"per_example_p_correct: {len(short)} (group, example) pairs lack some seed of their "
            "group; first: " + "; ".join(problems)
        )
    counts = counts.drop(columns="_expected")
    counts["n_seeds"] = counts["n_seeds"].astype("int64")
    counts["n_correct"] = counts["n_correct"].astype("int64")
    counts["p_correct"] = counts["n_correct"] / counts["n_seeds"]
    return counts.sort_values([*keys, "example"], kind="stable").reset_index(drop=True)


def sorted_curve(p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: ``y`` the values of ``p`` sorted in descending order, ``x`` = rank / (n - 1)
    in [0, 1] (``[0.0]`` for a single value), so curves of different lengths share an axis."""
    y = np.sort(np.asarray(p, dtype=float).ravel())[::-1]
    n = len(y)
    if n == 0:
        raise ValueError("sorted_curve: no values")
    x = np.arange(n) / (n - 1) if n > 1 else np.zeros(1)
    return x, y


# ---------------------------------------------------------------------------- the binomial


def _check_binomial(n_seeds: int, p: float) -> None:
    if int(n_seeds) != n_seeds or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")


def binomial_pmf(n_seeds: int, p: float) -> np.ndarray:
    """P(K = k) for k = 0..n_seeds of K ~ Binomial(n_seeds, p), float64 of length n_seeds + 1
    (computed in log space with ``math.lgamma``; exact point masses at p = 0 and p = 1)."""
    _check_binomial(n_seeds, p)
    n = int(n_seeds)
    pmf = np.zeros(n + 1)
    if p == 0.0:
        pmf[0] = 1.0
        return pmf
    if p == 1.0:
        pmf[n] = 1.0
        return pmf
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n_fact = math.lgamma(n + 1)
    for k in range(n + 1):
        log_comb = log_n_fact - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        pmf[k] = math.exp(log_comb + k * log_p + (n - k) * log_q)
    return pmf


def binomial_reference(n_seeds: int, p: float, n_examples: int) -> np.ndarray:
    """The expected sorted curve of ``n_examples`` i.i.d. Binomial(n_seeds, p) / n_seeds values.

    Value i (i = 1..n) of the ascending curve is the binomial quantile (the smallest k with
    cdf(k) >= q) at the plotting position q = (i - 0.5) / n, divided by n_seeds; returned in
    descending order, like ``sorted_curve``'s ``y``, as float64 of length ``n_examples``.
    """
    if int(n_examples) != n_examples or n_examples < 1:
        raise ValueError(f"n_examples must be a positive integer, got {n_examples!r}")
    cdf = np.cumsum(binomial_pmf(n_seeds, p))
    q = (np.arange(1, int(n_examples) + 1) - 0.5) / n_examples
    k = np.searchsorted(cdf, q - _QUANTILE_TOL, side="left")
    k = np.minimum(k, int(n_seeds))  # rounding can leave cdf[-1] a hair below 1
    return (k / n_seeds)[::-1].astype(float)


# ------------------------------------------------------------------- chi-square goodness of fit


def _gamma_p_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma P(a, x) by its power series (x < a + 1)."""
    term = total = 1.0 / a
    denom = a
    for _ in range(100_000):
        denom += 1.0
        term *= x / denom
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    else:  # pragma: no cover - the series converges for x < a + 1
        raise ArithmeticError(f"incomplete gamma series did not converge (a={a}, x={x})")
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1),
    evaluated with the modified Lentz method."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    else:  # pragma: no cover - the fraction converges for x >= a + 1
        raise ArithmeticError(f"incomplete gamma fraction did not converge (a={a}, x={x})")
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a)."""
    if not a > 0:
        raise ValueError(f"gamma_q: a must be > 0, got {a!r}")
    if math.isnan(x) or x < 0:
        raise ValueError(f"gamma_q: x must be >= 0, got {x!r}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_p_series(a, x))
    return _gamma_q_fraction(a, x)


def chi2_sf(statistic: float, dof: float) -> float:
    """P(X >= statistic) for X ~ chi-square with ``dof`` > 0 degrees of freedom
    (= Q(dof / 2, statistic / 2)); ``chi2_sf(0, k) == 1``."""
    if not dof > 0:
        raise ValueError(f"chi2_sf: dof must be > 0, got {dof!r}")
    return gamma_q(dof / 2.0, float(statistic) / 2.0)


def _pool_bins(expected: np.ndarray, min_expected: float) -> list[list[int]]:
    """Adjacent bins grouped left to right until each group expects >= ``min_expected``; a short
    last group joins the one before it (one group in all if the total is short)."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for k, e in enumerate(expected):
        current.append(k)
        total += e
        if total >= min_expected:
            groups.append(current)
            current, total = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def binomial_gof(
    n_correct: Sequence[int] | np.ndarray, n_seeds: int, p: float | None = None
) -> dict:
    """Chi-square goodness of fit of per-example counts of correct classifications against
    Binomial(n_seeds, p).

    ``n_correct`` holds one count in 0..n_seeds per example. The observed histogram of the counts
    is compared with n_examples x pmf; adjacent values are pooled (left to right) so that every
    bin expects at least 5 examples. ``p`` defaults to the pooled mean, sum(n_correct) /
    (n_examples x n_seeds), which costs one more degree of freedom: dof = n_bins - 1 (p given) or
    n_bins - 2 (p estimated).

    Returns ``{"statistic", "dof", "p_value", "p", "n_examples", "n_bins"}`` (plain floats and
    ints). When dof < 1 (too few examples, or p estimated as 0 or 1 so that one bin holds every
    example) there is nothing to test: ``p_value`` is NaN.
    """
    counts = np.asarray(n_correct).ravel()
    if counts.size == 0:
        raise ValueError("binomial_gof: no examples")
    if not np.all(np.isfinite(counts.astype(float))) or np.any(counts != np.rint(counts)):
        raise ValueError("binomial_gof: n_correct must be integers")
    counts = counts.astype(np.int64)
    _check_binomial(n_seeds, 0.5 if p is None else p)
    if counts.min() < 0 or counts.max() > n_seeds:
        raise ValueError(
            f"binomial_gof: n_correct must lie in 0..{n_seeds}, got {counts.min()}..{counts.max()}"
        )
    n_examples = int(counts.size)
    estimated = p is None
    p_used = float(counts.sum() / (n_examples * n_seeds)) if estimated else float(p)

    observed = np.bincount(counts, minlength=int(n_seeds) + 1).astype(float)
    expected = n_examples * binomial_pmf(n_seeds, p_used)
    groups = _pool_bins(expected, MIN_EXPECTED)
    obs = np.array([observed[g].sum() for g in groups])
    exp = np.array([expected[g].sum() for g in groups])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(exp > 0, (obs - exp) ** 2 / exp, np.where(obs > 0, np.inf, 0.0))
    statistic = float(terms.sum())
    dof = len(groups) - 1 - (1 if estimated else 0)
    p_value = chi2_sf(statistic, dof) if dof >= 1 else math.nan
    return {
        "statistic": statistic,
        "dof": int(dof),
        "p_value": float(p_value),
        "p": p_used,
        "n_examples": n_examples,
        "n_bins": len(groups),
    }


def binomial_gof_by(
    table: pd.DataFrame,
    by: str | Sequence[str] = ("variant", "epochs"),
    p: float | None = None,
) -> pd.DataFrame:
    """``binomial_gof`` of each group of a ``per_example_p_correct`` table: one row per group
    with columns ``by`` + ``n_seeds``, ``statistic``, ``dof``, ``p_value``, ``p``,
    ``n_examples``, ``n_bins``. ``p`` None tests each group against its own mean."""
    keys = _as_by(by)
    rows = []
    groups = table.groupby(keys, sort=True) if keys else [((), table)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        seeds = part["n_seeds"].unique()
        if len(seeds) != 1:
            raise ValueError(
                f"binomial_gof_by: group {dict(zip(keys, key, strict=True))} mixes n_seeds "
                f"{sorted(seeds.tolist())}"
            )
        result = binomial_gof(part["n_correct"].to_numpy(), int(seeds[0]), p)
        rows.append({**dict(zip(keys, key, strict=True)), "n_seeds": int(seeds[0]), **result})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- hardest / easiest


def hardest_and_easiest(
    table: pd.DataFrame,
    k: int,
    by: str | Sequence[str] = ("variant", "epochs"),
    tie_seed: int | None = None,
) -> pd.DataFrame:
    """The ``k`` examples with the lowest (``end`` = "hardest") and the highest (``end`` =
    "easiest") P(correct) in each group of a ``per_example_p_correct`` table.

    Ties are broken by the smaller example index at both ends, or, with ``tie_seed``, in a
    random order of the examples drawn from it (the same in every group): with few seeds many
    examples tie at P(correct) 0 or 1, and splits stored in class order would otherwise show
    the tied examples of the first classes only. ``rank`` counts from 0 at the
    extreme (rank 0 of "hardest" is the hardest example). A group with fewer than 2k examples
    lists some examples at both ends; one with fewer than k lists all of them at each end.
    Returns the table's columns plus ``end`` and ``rank``, ordered by ``by``, end (hardest
    first) and rank.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"hardest_and_easiest: k must be a positive integer, got {k!r}")
    keys = _as_by(by)
    for col in [*keys, "example", "p_correct"]:
        if col not in table.columns:
            raise ValueError(f"hardest_and_easiest: table has no column {col!r}")
    tie = table["example"]
    if tie_seed is not None:
        examples = np.unique(table["example"].to_numpy())
        order = np.random.default_rng(tie_seed).permutation(len(examples))
        tie = table["example"].map(dict(zip(examples, order, strict=True)))
    table = table.assign(_tie=tie.to_numpy())
    parts = []
    for end, ascending in (("hardest", True), ("easiest", False)):
        ordered = table.sort_values(
            [*keys, "p_correct", "_tie"],
            ascending=[True] * len(keys) + [ascending, True],
            kind="stable",
        )
        top = ordered.groupby(keys, sort=False).head(int(k)) if keys else ordered.head(int(k))
        top = top.copy()
        top["end"] = end
        top["rank"] = top.groupby(keys, sort=False).cumcount() if keys else np.arange(len(top))
        parts.append(top)
    out = pd.concat(parts, ignore_index=True)
    out["_end_order"] = (out["end"] == "easiest").astype(int)
    out = out.sort_values([*keys, "_end_order", "rank"], kind="stable")
    return out.drop(columns=["_end_order", "_tie"]).reset_index(drop=True)


# === the study kind =============================================================================

SCHEMA = yaml.safe_load(
    """
memorization:
  description: what a memorization study (Arpit et al. 2017) measures of every
    run
  type: object
  additionalProperties: false
  default: {}
  properties:
    examples:
      description: 'whose per-example P(correct) is aggregated over seeds:
        the training examples as trained (train: randX noise images, randY
        labels) or the clean test examples (test)'
      enum:
      - train
      - test
      default: train
    n_examples:
      description: 'how many examples P(correct) follows: a random subset
        of the set drawn with data_seed, the same in every seed (all of them
        if the set is smaller)'
      type: integer
      minimum: 10
      default: 1000
    data_seed:
      description: the seed of the data variant's noise (randX images, randY
        labels), shared by every run so that example i is the same example
        in every seed
      type: integer
      minimum: 0
      default: 0
    csr_epochs:
      description: epochs (0 = initial weights) at which the critical sample
        ratio is measured during training
      type: array
      items:
        type: integer
        minimum: 0
      uniqueItems: true
      default: []
    csr_examples:
      description: 'validation points the critical sample ratio is measured
        on: a class-stratified random subset drawn with data_seed, the same
        in every seed and epoch'
      type: integer
      minimum: 10
      default: 500
    csr_radius:
      description: L-infinity radius r of the adversarial search, on the 0..255
        pixel scale (Arpit et al.'s code, 0.3/255 on [0, 1] inputs; a blog
        reproduction used 40/255, 133 times larger)
      type: number
      exclusiveMinimum: 0
      default: 0.3
    csr_alpha:
      description: step along the gradient's sign, on the 0..255 pixel scale
        (Arpit et al.'s code, 0.25/255 on [0, 1] inputs)
      type: number
      minimum: 0
      default: 0.25
    csr_beta:
      description: standard deviation of the Langevin noise per step, on the
        0..255 pixel scale (Arpit et al.'s code, 0.2/255 on [0, 1] inputs)
      type: number
      minimum: 0
      default: 0.2
    csr_steps:
      description: search steps per point
      type: integer
      minimum: 1
      default: 20
"""
)

# --- tables -------------------------------------------------------------------------------------


MEMO_KEYS = ["model", "variant", "max_epochs"]


def p_correct(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """P(correct) of each example over the seeds, per (model, data variant, epochs): the
    training examples as trained (``memorization.examples: train``) or the clean test set."""
    from corruptlab.data.datasets import example_subset

    mem = study["memorization"]
    p = tables["predictions"]
    condition = "train" if mem["examples"] == "train" else "clean"
    p = p[(p["condition"] == condition) & (p["method"] == "source")]
    if condition == "clean":  # the evaluation holds every test example: keep the study's subset
        n_test = int(p["index"].max()) + 1
        p = p[p["index"].isin(example_subset(n_test, mem["n_examples"], mem["data_seed"]))]
    frame = p.rename(columns={"index": "example"})[[*MEMO_KEYS, "seed", "example", "correct"]]
    table = per_example_p_correct(frame, by=MEMO_KEYS)
    labels = p.drop_duplicates([*MEMO_KEYS, "index"]).rename(columns={"index": "example"})
    # randY's labels are the same in every seed (one data seed): the label trained on
    table = table.merge(labels[[*MEMO_KEYS, "example", "label"]], on=[*MEMO_KEYS, "example"])
    return table.sort_values([*MEMO_KEYS, "example"], ignore_index=True)


def csr(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The critical sample ratio per (model, data variant, epochs, epoch measured at): mean,
    95% CI and n over seeds."""
    h = tables["histories"]
    if "csr" not in h:
        return pd.DataFrame(columns=[*MEMO_KEYS, "epoch", "mean", "ci95_low", "ci95_high", "n"])
    h = h[h["csr"].notna()]
    return pd.DataFrame(ci_rows(h, [*MEMO_KEYS, "epoch"], "csr", {}))


# --- claims -------------------------------------------------------------------------------------


GOF_LEVEL = 0.05


def _gof_rows(tables: dict[str, pd.DataFrame], variant: str, binomial: bool) -> list[dict]:
    """One row per (model, epochs): is the variant's P(correct) consistent with a Binomial of its
    own mean (a chi-square goodness-of-fit test over the examples' counts of correct seeds)?
    "Consistent with" is the test's null hypothesis: not rejecting it supports the claim.
    "Unlike" needs a rejection; without one it is inconclusive."""

    word = "consistent with" if binomial else "unlike"
    claim = f"{variant} P(correct) is {word} a Binomial (examples alike)"
    test = "chi-square goodness of fit to Binomial(seeds, mean P(correct))"
    criterion = f"{test} {'does not reject' if binomial else 'rejects'} at level {GOF_LEVEL:g}"
    table = tables["p_correct"]
    at = table[table["variant"] == variant]
    if at.empty:
        return [not_applicable(claim, "-", criterion, f"the study has no {variant} variant")]
    rows = []
    for (model, epochs), g in at.groupby(["model", "max_epochs"], sort=True):
        n_seeds = int(g["n_seeds"].iloc[0])
        gof = binomial_gof(g["n_correct"].to_numpy(), n_seeds)
        detail = (
            f"chi2 = {gof['statistic']:.1f}, dof = {gof['dof']}, mean P(correct) = "
            f"{gof['p']:.3f}, {n_seeds} seeds, {gof['n_examples']} examples"
        )
        subject = f"{model}, {epochs} epochs"
        if math.isnan(gof["p_value"]):
            rows.append(not_applicable(claim, subject, criterion, "no p-value", detail=detail))
            continue
        rows.append(
            by_test(
                claim,
                subject,
                gof["p_value"],
                gof["n_examples"],
                test,
                GOF_LEVEL,
                supported_if_rejected=not binomial,
                detail=detail,
            )
        )
    return rows


def _real_data_learned(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity: trained on real data, the model classifies the test set (else the comparisons of
    real with randX and randY compare models that learned nothing)."""
    claim = "the model learns real data"
    runs = tables["runs"]
    if not {"noise_kind", "condition", "accuracy", "model", "max_epochs"} <= set(runs):
        return learns(claim, runs.iloc[:0], [])  # no clean runs recorded: not applicable
    real = runs[(runs["noise_kind"] == "none") & (runs["condition"] == "clean")]
    subject = real["model"] + ", " + real["max_epochs"].astype(str) + " epochs"
    return learns(claim, real.assign(subject=subject), ["subject"])


def _randx_binomial(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    return _gof_rows(tables, "randX", binomial=True)


def _real_not_binomial(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    return _gof_rows(tables, "real", binomial=False)


def _randy_not_binomial(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    return _gof_rows(tables, "randY", binomial=False)


def _csr_growth(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """The CSR's growth from the first to the last epoch it was measured at, randY minus real
    (per seed pair of means: Welch CI over seeds)."""
    claim = "the critical sample ratio of randY grows faster than that of real data"
    quantity = "CSR growth (last - first measured epoch): randY - real"
    h = tables["histories"]
    if "csr" not in h or h["csr"].notna().sum() == 0:
        reason = "no CSR measured (memorization.csr_epochs)"
        return [not_applicable(claim, "-", quantity, reason)]
    h = h[h["csr"].notna()]
    growth_range = difference_range("csr")  # one run's growth: [-1, 1]
    rows = []
    for (model, epochs), g in h.groupby(["model", "max_epochs"], sort=True):
        measured = sorted(g["epoch"].unique())
        subject = f"{model}, {epochs} epochs"
        if len(measured) < 2 or not {"real", "randY"} <= set(g["variant"]):
            reason = "needs real and randY runs and two CSR epochs"
            rows.append(not_applicable(claim, subject, quantity, reason))
            continue
        first, last = measured[0], measured[-1]
        growth = {}
        for variant in ("real", "randY"):
            v = g[g["variant"] == variant].pivot_table(index="seed", columns="epoch", values="csr")
            growth[variant] = (v[last] - v[first]).to_numpy(float)
        s = diff_ci(
            growth["randY"],
            growth["real"],
            bounds=difference_bounds(growth_range, growth_range),
        )
        detail = f"epochs {first} -> {last}; real {growth['real'].mean():+.3f}"
        rows.append(compare(claim, subject, s, quantity, ">", 0, detail))
    return rows


# --- figures ------------------------------------------------------------------------------------


VARIANT_COLORS = {"real": "tab:blue", "randY": "tab:orange", "randX": "tab:green"}


MEMO_BY = ("model", "variant", "max_epochs")


def _variant_order(names) -> list[str]:
    known = list(VARIANT_COLORS)
    return sorted(set(names), key=lambda v: (known.index(v) if v in known else 9, v))


def _memo_panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (model, epochs)."""
    return [
        (f"{model}, {epochs} epoch{'s' if epochs != 1 else ''}", g)
        for (model, epochs), g in frame.groupby(["model", "max_epochs"], sort=True)
    ]


def p_correct_sorted(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al. Figure 1: each example's probability of being classified correctly over the
    seeds, sorted, per data variant; dashed: the sorted curve expected if every example were
    alike, Binomial(seeds, mean P(correct) of randX) / seeds."""

    plt = pyplot()
    table = tables["p_correct"]
    panels = _memo_panels(table)
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for variant in _variant_order(data["variant"]):
                d = data[data["variant"] == variant]
                x, y = sorted_curve(d["p_correct"].to_numpy(float))
                color = VARIANT_COLORS.get(variant, "tab:gray")
                ax.plot(100 * x, y, color=color, lw=1.6, label=variant)
            randx = data[data["variant"] == "randX"]
            if len(randx):
                n_seeds = int(randx["n_seeds"].iloc[0])
                p = float(randx["p_correct"].mean())
                ref = binomial_reference(n_seeds, p, len(randx))
                x = np.linspace(0, 100, len(ref))
                ax.plot(x, ref, color="black", ls="--", lw=1, label=f"Binomial({n_seeds}, {p:.2f})")
            ax.set_title(title)
            ax.set_xlabel("examples, sorted (%)")
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel("P(correct) over seeds")
        axes[-1].legend(frameon=False, loc="upper right")
        seeds = "/".join(map(str, sorted(table["n_seeds"].unique())))
        fig.suptitle(
            f"Per-example P(correct) over {seeds} seeds, examples sorted; dashed: the curve if "
            "every example were alike\n(a Binomial with randX's mean; the claims table tests "
            "each variant against it)",
            fontsize=9,
        )
    return fig


def csr_over_epochs(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al.'s critical sample ratio over training, per data variant: mean and 95% CI
    over seeds."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    table = tables["csr"]
    panels = _memo_panels(table) if len(table) else [("no CSR measured", table)]
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for variant in _variant_order(data.get("variant", [])):
                d = data[data["variant"] == variant].sort_values("epoch")
                color = VARIANT_COLORS.get(variant, "tab:gray")
                plot_band(ax, d["epoch"], d["mean"], d["ci95_low"], d["ci95_high"], color, variant)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].set_ylabel("critical sample ratio")
        if len(table):
            axes[-1].legend(frameon=False, loc="upper left")
        fig.suptitle(
            "Critical sample ratio during training: the share of validation points from which\n"
            "an adversarial search within a small L-inf ball crosses the decision boundary",
            fontsize=9,
        )
    return fig


def examples_grid(
    table: pd.DataFrame, images: dict[str, Any], k: int = 8, tie_seed: int | None = 0
) -> plt.Figure:
    """The ``k`` hardest and easiest examples (lowest and highest P(correct) over seeds) of each
    variant with image content (randX's inputs are noise), per model and epochs, ties broken in
    a random order drawn from ``tie_seed``: ``images`` maps a variant to uint8 images
    [N, H, W] indexed by example."""

    plt = pyplot()
    left_out = sorted(set(table["variant"]) - set(images))
    table = table[table["variant"].isin(images)]
    ends = (
        hardest_and_easiest(table, k, by=list(MEMO_BY), tie_seed=tie_seed) if len(table) else table
    )
    groups = list(ends.groupby(list(MEMO_BY), sort=True)) if len(ends) else []
    n_rows = max(1, 2 * len(groups))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            n_rows, k, figsize=(1.0 * k + 1.6, 1.25 * n_rows + 0.6), squeeze=False
        )
        for ax in axes.flat:
            ax.axis("off")
        for g_i, (key, g) in enumerate(groups):
            model, variant, epochs = key
            for e_i, end in enumerate(("hardest", "easiest")):
                r = 2 * g_i + e_i
                rows = g[g["end"] == end].head(k)
                for c, ex in enumerate(rows.itertuples(index=False)):
                    ax = axes[r, c]
                    ax.imshow(images[variant][int(ex.example)], cmap="gray_r", vmin=0, vmax=255)
                    ax.set_title(f"y={int(ex.label)} p={ex.p_correct:.2f}", fontsize=7)
                axes[r, 0].text(
                    -0.35,
                    0.5,
                    f"{variant}\n{model}, {epochs} ep.\n{end}",
                    transform=axes[r, 0].transAxes,
                    ha="right",
                    va="center",
                    fontsize=7,
                )
        note = ""
        if left_out:
            note = f"\nnot shown: {', '.join(left_out)} (noise inputs: no image to show)"
        fig.suptitle(
            "Hardest and easiest training examples (P(correct) over seeds, ties in random order; "
            f"y = label trained on){note}",
            fontsize=9,
        )
        fig.tight_layout()
    return fig


def examples_figure(tables: dict[str, pd.DataFrame], study: dict, files: dict) -> Any:
    """The hardest and easiest examples as images: the training images each variant trained on
    (its labels file; randX's noise inputs are left out), or the clean test images."""
    from corruptlab.data.datasets import load_prepared
    from corruptlab.data.noise import load_noisy_labels, variant_of

    data = load_prepared(files["dataset"])
    table = tables["p_correct"]
    images = {}
    for spec, labels in files["labels"]:  # each data variant's (noise spec, labels file)
        variant = variant_of(spec)
        if study["memorization"]["examples"] == "test":
            images[variant] = data["test_images"].numpy()
            continue
        noisy = load_noisy_labels(labels)
        if noisy.n_synthetic:  # randX trains on noise images: nothing to show
            continue
        images[variant] = data["train_images"].numpy()[noisy.indices]  # by training position
    return examples_grid(table, images, tie_seed=study["memorization"]["data_seed"])


class Memorization(StudyKind):
    name = "memorization"
    doc = (
        "Arpit et al. 2017: per-example difficulty over seeds (real / randX / randY), "
        "critical sample ratio"
    )
    schema = SCHEMA
    uses_patience = False  # its runs train every epoch and keep their last weights
    tables = {
        "p_correct": Output(p_correct, ("predictions",)),
        "csr": Output(csr, ("histories",)),
        "claims": Output(claims_table, ("runs", "p_correct", "histories")),
    }
    figures = {
        "p_correct_sorted": Output(p_correct_sorted, ("p_correct",)),
        "csr_over_epochs": Output(csr_over_epochs, ("csr",)),
        "examples_grid": Output(examples_figure, ("p_correct",), files=("dataset", "labels")),
    }
    claims = (
        _real_data_learned,
        _randx_binomial,
        _real_not_binomial,
        _randy_not_binomial,
        _csr_growth,
    )

    def check(self, where: str, study: dict) -> list[str]:
        mem = study.get("memorization")
        epochs = [e for _, e in entries(as_list(study.get("max_epochs")), int)]
        if not isinstance(mem, dict) or not epochs:
            return []
        late = [e for _, e in entries(mem.get("csr_epochs"), int) if e > max(epochs)]
        if late:
            return [
                f"{where}.memorization.csr_epochs: {late} beyond max_epochs {max(epochs)}; "
                "accepted: epochs in 0..max_epochs"
            ]
        return []

    def run_extras(self, study: dict, run: dict) -> dict:
        """Every epoch trained (patience = the epochs), the last weights kept, the variant's
        noise from the shared data seed, and the critical sample ratio measured at its epochs
        (``csr``)."""
        mem, epochs = study["memorization"], run["max_epochs"]
        csr_epochs = sorted(e for e in mem["csr_epochs"] if e <= epochs)
        extras: dict[str, Any] = {
            "patience": epochs,
            "data_seed": mem["data_seed"],
            "restore_best": False,
        }
        if csr_epochs:
            extras["csr"] = {
                "epochs": csr_epochs,
                "n": mem["csr_examples"],
                "radius": mem["csr_radius"],
                "alpha": mem["csr_alpha"],
                "beta": mem["csr_beta"],
                "steps": mem["csr_steps"],
            }
        return extras

    def eval_conditions(self, study: dict) -> list[dict]:
        mem = study["memorization"]
        if mem["examples"] != "train":
            return []
        # the run's own training examples as trained (randX inputs, randY labels)
        return [{"name": "train", "severity": 0, "family": "train", "n": mem["n_examples"]}]


register(Memorization())
