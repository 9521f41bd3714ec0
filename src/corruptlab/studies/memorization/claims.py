"""The memorization kind's claims, and the chi-square goodness-of-fit test they rest on.

If every example were equally hard (what pure memorization predicts, and what randX shows), the
per-example counts of correct seeds would be i.i.d. Binomial(n_seeds, p) with p the mean
accuracy; easy and hard examples (real data, randY) spread them further than that.
``binomial_gof`` (and ``binomial_gof_by``, per group) is a chi-square goodness-of-fit test of the
counts against Binomial(n_seeds, p), with ``chi2_sf`` its survival function.

Only numpy, pandas and the standard library: the binomial pmf (tables.py) and the chi-square
survival function are written by hand (log-gamma, and the regularized incomplete gamma
function), so that aggregating needs neither torch nor scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from corruptlab.report.claims import by_test, compare, learns, not_applicable
from corruptlab.report.stats import diff_ci, difference_bounds, difference_range
from corruptlab.studies.memorization.tables import _as_by, _check_binomial, binomial_pmf

MIN_EXPECTED = 5.0  # every pooled bin of the goodness-of-fit test expects at least this many
_EPS = 1e-15  # relative accuracy of the incomplete gamma iterations
_TINY = 1e-300  # keeps the continued fraction away from division by zero


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
