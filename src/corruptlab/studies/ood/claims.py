"""The ood kind's claims: Hendrycks & Gimpel 2017's max-softmax baseline checked on a study's
numbers, with the paper's MNIST AUROCs beside ours."""

from __future__ import annotations

import pandas as pd

from corruptlab.report.claims import Paper, compare, learns, not_applicable, our_setting, reported
from corruptlab.report.stats import RANGES, bounds_of, mean_ci
from corruptlab.report.tables import config_subjects

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
# the same table's AUPR with the in-distribution (AUPR-In) and the OOD images (AUPR-Out) as
# positives; the paper reports no FPR at 95% TPR
HG_AUPR = {
    "aupr_in": {"uniform": 0.99, "gaussian": 0.90},
    "aupr_out": {"uniform": 0.98, "gaussian": 0.91},
}
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


# the paper's own OOD sets (as its code draws them) -> its name for them
HG_OWN = {"hendrycks_gaussian": "gaussian", "hendrycks_uniform": "uniform"}


def _msp_aupr_fpr95(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Max-softmax AUPR-In and AUPR-Out beside Hendrycks & Gimpel's (Table 2), and FPR at 95%
    TPR (which they do not report), against the paper's own sets; reported, not judged."""
    claim = "max-softmax AUPR-In, AUPR-Out and FPR95 against the paper's own sets (reported)"
    ood = tables["ood_runs"]
    at = ood[ood["ood_set"].isin(list(HG_OWN)) & (ood["score"] == "msp")]
    rows = []
    for subject, g in config_subjects(at):
        for ood_set, s_g in g.groupby("ood_set", sort=True):
            for metric in ("aupr_in", "aupr_out", "fpr95"):
                s = mean_ci(s_g[metric].to_numpy(float), bounds=RANGES[metric])
                paper = None
                if metric in HG_AUPR:
                    base = hg_paper(ood_set, subject, study)
                    value = HG_AUPR[metric][HG_OWN[ood_set]]
                    paper = Paper(value, base.setting, base.source, base.differs)
                name = {"aupr_in": "AUPR-In", "aupr_out": "AUPR-Out", "fpr95": "FPR95"}[metric]
                rows.append(
                    reported(claim, f"{subject} vs {ood_set}", s, f"{name}(msp)", paper=paper)
                )
    return rows
