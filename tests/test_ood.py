"""OOD detection: scores, metrics, OOD sets and held-out classes against hand-computed values."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from corruptlab.core.registry import UnknownNameError
from corruptlab.eval.ood import (
    OOD_SETS,
    SCORES,
    TPR_LEVEL,
    compute_scores,
    gaussian_noise,
    held_out_split,
    max_logit,
    msp,
    neg_energy,
    neg_entropy,
    ood_metrics,
    pixel_stats,
    uniform_noise,
)

LN2 = math.log(2.0)
LN3 = math.log(3.0)
LN4 = math.log(4.0)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_import_does_not_load_torch_or_sklearn():
    code = (
        "import corruptlab.eval.ood, sys\n"
        "heavy = sorted(m for m in ('torch', 'sklearn') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registries():
    assert SCORES.names() == ["msp", "entropy", "energy", "max_logit"]
    assert OOD_SETS.names() == [
        "gaussian_noise",
        "uniform_noise",
        "hendrycks_gaussian",
        "hendrycks_uniform",
    ]
    assert TPR_LEVEL == 0.95
    with pytest.raises(UnknownNameError, match="accepted: msp, entropy, energy, max_logit"):
        SCORES.get("odin")
    for _, fn in SCORES.items():
        assert "higher = more in-distribution" in " ".join(fn.__doc__.split())


# ------------------------------------------------------------------------------------ scores

# softmax([0, 0]) = [1/2, 1/2]; softmax([ln 3, 0]) = [3/4, 1/4]
HAND = t([[0.0, 0.0], [LN3, 0.0]])


def test_msp_hand_computed():
    assert msp(HAND).tolist() == pytest.approx([0.5, 0.75], abs=1e-15)


def test_entropy_hand_computed():
    # H([1/2, 1/2]) = ln 2; H([3/4, 1/4]) = 3/4 ln(4/3) + 1/4 ln 4 = ln 4 - 3/4 ln 3
    expected = [-LN2, -(LN4 - 0.75 * LN3)]
    assert neg_entropy(HAND).tolist() == pytest.approx(expected, abs=1e-15)


def test_energy_hand_computed():
    # logsumexp(0, 0) = ln 2; logsumexp(ln 3, 0) = ln(3 + 1) = ln 4
    assert neg_energy(HAND).tolist() == pytest.approx([LN2, LN4], abs=1e-15)


def test_max_logit_hand_computed():
    assert max_logit(HAND).tolist() == pytest.approx([0.0, LN3], abs=1e-15)


def test_scores_shape_dtype_and_registry_entries():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    scores = compute_scores(logits.float())
    assert list(scores) == SCORES.names()
    for name, s in scores.items():
        assert s.shape == (7,) and s.dtype == torch.float64, name
        assert torch.equal(s, SCORES.get(name)(logits.float())), name
    with pytest.raises(ValueError, match=r"shape \[N, C\]"):
        msp(torch.zeros(3))


def test_scores_are_stable_on_extreme_logits():
    logits = t([[1000.0, 0.0], [0.0, float("-inf")]])
    assert msp(logits).tolist() == [1.0, 1.0]
    assert neg_entropy(logits).tolist() == pytest.approx([0.0, 0.0], abs=1e-300)
    assert neg_energy(logits).tolist() == [1000.0, 0.0]
    assert max_logit(logits).tolist() == [1000.0, 0.0]


def test_confident_scores_above_flat_for_every_score():
    flat = t([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    confident = flat.clone()
    confident[:, 0] += 4.0  # one class clearly preferred, the others unchanged
    for name, fn in SCORES.items():
        assert (fn(confident) > fn(flat)).all(), name
    # flat logits give the least in-distribution msp and entropy scores possible
    assert msp(flat).tolist() == pytest.approx([1 / 3, 1 / 3])
    assert neg_entropy(flat).tolist() == pytest.approx([-LN3, -LN3])


# ----------------------------------------------------------------------------------- metrics


def average_precision(positive, negative) -> float:
    """AP by its definition: sum over thresholds (distinct scores, descending) of
    (R_k - R_{k-1}) * P_k, where an example is predicted positive when its score >= threshold."""
    positive, negative = list(positive), list(negative)
    ap, prev_recall = 0.0, 0.0
    for thr in sorted(set(positive + negative), reverse=True):
        tp = sum(s >= thr for s in positive)
        fp = sum(s >= thr for s in negative)
        recall = tp / len(positive)
        ap += (recall - prev_recall) * tp / (tp + fp)
        prev_recall = recall
    return ap


def test_perfectly_separated():
    m = ood_metrics(np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0]))
    assert m == {"auroc": 1.0, "fpr95": 0.0, "aupr_in": 1.0, "aupr_out": 1.0, "n_in": 3, "n_out": 3}


def test_reversed():
    m = ood_metrics([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])
    assert m["auroc"] == 0.0
    assert m["fpr95"] == 1.0  # keeping every in-distribution example keeps every OOD one
    # ranking out, out, out, in, in, in: precision 1/4, 2/5, 3/6 at each recall step of 1/3
    assert m["aupr_in"] == pytest.approx((1 / 4 + 2 / 5 + 3 / 6) / 3)
    assert m["aupr_out"] == pytest.approx((1 / 4 + 2 / 5 + 3 / 6) / 3)


def test_hand_case_with_ties():
    score_in, score_out = [0.9, 0.8, 0.4], [0.7, 0.4, 0.1]
    # pairs (in, out) with in > out: 0.9 beats all 3, 0.8 beats all 3, 0.4 beats 0.1 -> 7;
    # one tie (0.4, 0.4) counts 1/2; 9 pairs
    m = ood_metrics(score_in, score_out)
    assert m["auroc"] == pytest.approx(7.5 / 9)
    # TPR >= 0.95 needs all three in-distribution examples: threshold 0.4, and the tied OOD
    # score 0.4 goes with them (score >= threshold), as does 0.7 -> FPR 2/3
    assert m["fpr95"] == pytest.approx(2 / 3)
    assert (m["n_in"], m["n_out"]) == (3, 3)


def test_average_precision_hand_computed():
    score_in, score_out = [0.9, 0.5], [0.7, 0.2, 0.1]
    m = ood_metrics(score_in, score_out)
    # in positive, ranking 0.9 in, 0.7 out, 0.5 in, 0.2 out, 0.1 out:
    # recall 1/2 at precision 1, then recall 1 at precision 2/3 -> 1/2 + 1/2 * 2/3 = 5/6
    assert m["aupr_in"] == pytest.approx(5 / 6)
    assert average_precision(score_in, score_out) == pytest.approx(5 / 6)
    # OOD positive on negated scores, ranking 0.1 out, 0.2 out, 0.5 in, 0.7 out, 0.9 in:
    # recall 1/3 and 2/3 at precision 1, then recall 1 at precision 3/4 -> 2/3 + 1/4 = 11/12
    assert m["aupr_out"] == pytest.approx(11 / 12)
    assert average_precision([-s for s in score_out], [-s for s in score_in]) == pytest.approx(
        11 / 12
    )
    assert m["auroc"] == pytest.approx(5 / 6)  # 0.9 beats 3, 0.5 beats 2, of 6 pairs
    assert m["fpr95"] == pytest.approx(1 / 3)  # threshold 0.5 keeps OOD 0.7


def test_average_precision_with_ties_matches_definition():
    score_in, score_out = [0.8, 0.5, 0.5, 0.2], [0.5, 0.3, 0.2, 0.2, 0.0]
    m = ood_metrics(score_in, score_out)
    assert m["aupr_in"] == pytest.approx(average_precision(score_in, score_out))
    neg_in, neg_out = [-s for s in score_in], [-s for s in score_out]
    assert m["aupr_out"] == pytest.approx(average_precision(neg_out, neg_in))


def test_fpr95_at_exactly_95_percent_tpr():
    score_in = list(range(1, 21))  # 20 examples: threshold 2 keeps 19 of 20 = 95% exactly
    score_out = [2.5, 1.5, 0.5, 0.25]
    # threshold 3 (TPR 0.90) would give FPR 0; threshold 2 (TPR 0.95) keeps 2.5 -> 1/4;
    # threshold 1 (TPR 1) keeps 2.5 and 1.5 -> 1/2. The smallest FPR at TPR >= 0.95 is 1/4.
    assert ood_metrics(score_in, score_out)["fpr95"] == 0.25


def test_fpr95_ties_straddling_the_threshold():
    # in-distribution and OOD examples tied at the only score: no threshold separates them
    m = ood_metrics([1.0] * 20, [1.0, 0.0])
    assert m["fpr95"] == 0.5
    assert m["auroc"] == pytest.approx((20 * 0.5 + 20 * 1) / 40)


def test_metrics_accept_tensors_and_agree_with_arrays():
    g = torch.Generator().manual_seed(1)
    s_in, s_out = torch.randn(50, generator=g) + 1, torch.randn(30, generator=g)
    assert ood_metrics(s_in, s_out) == ood_metrics(s_in.numpy(), s_out.numpy())
    assert ood_metrics(s_in.float(), s_out.double())["n_out"] == 30


@pytest.mark.parametrize(
    ("score_in", "score_out", "match"),
    [
        ([], [1.0], "in-distribution scores are empty"),
        ([1.0], np.array([]), "OOD scores are empty"),
        ([1.0, float("nan")], [0.0], "non-finite"),
        ([1.0], [float("inf")], "non-finite"),
        ([[1.0, 2.0]], [0.0], "one-dimensional"),
    ],
)
def test_metrics_errors(score_in, score_out, match):
    with pytest.raises(ValueError, match=match):
        ood_metrics(score_in, score_out)


# ---------------------------------------------------------------------------------- OOD sets


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(0)
    train = np.clip(np.rint(rng.normal(120.0, 30.0, size=(300, 28, 28))), 0, 255)
    return {
        "train_images": torch.from_numpy(train.astype(np.uint8)),
        "test_images": torch.zeros(10, 28, 28, dtype=torch.uint8),
        "test_labels": torch.arange(10),
    }


def test_pixel_stats_match_numpy(data):
    x = data["train_images"].numpy().astype(np.float64)
    mean, std = pixel_stats(data["train_images"])
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert std == pytest.approx(x.std(), rel=1e-12)


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("gaussian_noise", torch.uint8),
        ("uniform_noise", torch.uint8),
        ("hendrycks_gaussian", torch.float64),
        ("hendrycks_uniform", torch.float64),
    ],
)
def test_ood_sets_shape_dtype_determinism(data, name, dtype):
    fn = OOD_SETS.get(name)
    x = fn(data, 16, 3)
    assert x.shape == (16, 28, 28) and x.dtype == dtype
    assert torch.equal(x, fn(data, 16, 3))
    assert not torch.equal(x, fn(data, 16, 4))
    # a private generator: the global torch RNG is untouched
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fn(data, 4, 0)
    assert torch.equal(torch.rand(3), expected)


def test_gaussian_noise_matches_training_statistics(data):
    mean, std = pixel_stats(data["train_images"])
    x = gaussian_noise(data, 500, 0).double()
    assert x.mean().item() == pytest.approx(mean, abs=0.5)
    assert x.std().item() == pytest.approx(std, abs=0.5)


def test_uniform_noise_covers_the_range(data):
    x = uniform_noise(data, 200, 0)
    assert x.min().item() == 0 and x.max().item() == 255
    assert x.double().mean().item() == pytest.approx(127.5, abs=1.0)
    assert x.double().std().item() == pytest.approx(math.sqrt((256**2 - 1) / 12), abs=1.0)


def test_hendrycks_sets_are_the_papers_distributions_on_the_0_1_scale(data):
    # Hendrycks & Gimpel's code: np.random.normal(size=...) and np.random.uniform(size=...) on
    # MNIST pixels in [0, 1]; ours are the same draws times 255 (our images' scale)
    g = OOD_SETS.get("hendrycks_gaussian")(data, 2000, 0) / 255.0
    assert g.mean().item() == pytest.approx(0.0, abs=0.01)
    assert g.std().item() == pytest.approx(1.0, abs=0.01)
    assert (g < 0).double().mean().item() == pytest.approx(0.5, abs=0.01)  # not clipped
    u = OOD_SETS.get("hendrycks_uniform")(data, 2000, 0) / 255.0
    assert 0.0 <= u.min().item() < 1e-4 and 1 - 1e-4 < u.max().item() <= 1.0
    assert u.mean().item() == pytest.approx(0.5, abs=0.005)
    assert u.std().item() == pytest.approx(math.sqrt(1 / 12), abs=0.005)
    assert len(u.unique()) > 256 * 10  # not rounded to 8 bits


def test_normalize_standardises_float_sets_like_uint8_and_leaves_them_intact():
    from corruptlab.data.datasets import normalize

    u8 = torch.tensor([[[0, 51], [204, 255]]], dtype=torch.uint8)
    as_float = u8.double()
    kept = as_float.clone()
    out = normalize(as_float, 0.5, 0.25)
    assert torch.equal(as_float, kept)  # the input is not modified in place
    assert torch.allclose(out, normalize(u8, 0.5, 0.25))
    f32 = u8.float()
    normalize(f32, 0.5, 0.25)
    assert torch.equal(f32, u8.float())


def test_ood_sets_follow_the_image_size():
    data = {"train_images": torch.full((5, 8, 6), 7, dtype=torch.uint8)}
    assert uniform_noise(data, 3, 0).shape == (3, 8, 6)
    # constant training pixels: std 0, so every noise pixel is the mean
    assert torch.equal(gaussian_noise(data, 3, 0), torch.full((3, 8, 6), 7, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be at least 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"seed": -1}, "seed must be non-negative"),
        ({"data": {}}, "train_images"),
        ({"data": {"train_images": torch.zeros(2, 3)}}, r"uint8 tensor \[N, H, W\]"),
    ],
)
def test_ood_set_errors(data, kwargs, match):
    args = {"data": data, "n": 2, "seed": 0, **kwargs}
    for name in OOD_SETS:
        with pytest.raises(ValueError, match=match):
            OOD_SETS.get(name)(args["data"], args["n"], args["seed"])


# -------------------------------------------------------------------------- held-out classes


def test_held_out_split_numpy():
    labels = np.array([0, 1, 2, 3, 1, 0, 3])
    in_mask, out_mask = held_out_split(labels, [0, 3])
    assert in_mask.dtype == bool and out_mask.dtype == bool
    assert in_mask.tolist() == [True, False, False, True, False, True, True]
    assert out_mask.tolist() == [not v for v in in_mask.tolist()]


def test_held_out_split_tensor():
    labels = torch.tensor([2, 0, 1, 2])
    in_mask, out_mask = held_out_split(labels, (2,))
    assert isinstance(in_mask, torch.Tensor) and in_mask.dtype == torch.bool
    assert in_mask.tolist() == [True, False, False, True]
    assert out_mask.tolist() == [False, True, True, False]
    assert labels[out_mask].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("labels", "in_classes", "match"),
    [
        ([0, 1, 2], [], "in_classes is empty"),
        ([0, 1, 2], [0, 1, 2], "at least one class must be held out"),
        ([0, 1, 2], [2, 1, 0], "at least one class must be held out"),
        ([0, 1, 2], [0, 5], r"in_classes \[5\] do not occur"),
        ([0, 1, 2], [1, 1], "duplicates"),
        ([0, 1, 2], [0.5], "must be integers"),
        ([], [0], "non-empty 1-D"),
        ([[0, 1]], [0], "non-empty 1-D"),
        ([0.0, 1.0], [0], "labels must be integers"),
    ],
)
def test_held_out_split_errors(labels, in_classes, match):
    with pytest.raises(ValueError, match=match):
        held_out_split(np.array(labels), in_classes)
