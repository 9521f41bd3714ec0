"""Label-noise kinds: counts, label distributions, determinism, slugs and storage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from corruptlab.core.registry import UnknownNameError
from corruptlab.data import noise
from corruptlab.data.noise import (
    NOISE,
    NoisyLabels,
    confusion_map,
    load_noisy_labels,
    make_noisy_labels,
    noise_slug,
    save_noisy_labels,
)

C = 10


def clean_labels(n: int, n_classes: int = C, seed: int = 123) -> np.ndarray:
    """Balanced clean labels in a shuffled order, stored compactly (as datasets keep them)."""
    labels = np.arange(n) % n_classes
    return np.random.default_rng(seed).permutation(labels).astype(np.uint8)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- registry and slugs


def test_registered_kinds_and_their_parameters():
    assert NOISE.names() == ["none", "uniform", "structured", "flip", "randx"]
    declared = {name: [(p.name, p.code, p.kind) for p in k.params] for name, k in NOISE.items()}
    assert declared == {
        "none": [],
        "uniform": [("alpha", "a", int)],
        "structured": [("alpha", "a", int), ("delta", "d", float)],
        "flip": [("p", "p", float)],
        "randx": [("p", "p", float)],
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "none"}, "none"),
        ({"kind": "uniform", "alpha": 5}, "uniform-a5"),
        ({"kind": "uniform", "alpha": 100}, "uniform-a100"),
        ({"kind": "structured", "alpha": 2, "delta": 0.5}, "structured-a2-d0.5"),
        ({"kind": "structured", "delta": 1.0, "alpha": 20}, "structured-a20-d1"),
        ({"kind": "flip", "p": 0.2}, "flip-p0.2"),
        ({"kind": "flip", "p": 0.0}, "flip-p0"),
    ],
    ids=["none", "uniform", "uniform-100", "structured", "structured-order", "flip", "flip-0"],
)
def test_noise_slug(spec, expected):
    assert noise_slug(spec) == expected


def test_unknown_kind_lists_the_accepted_kinds():
    with pytest.raises(UnknownNameError) as err:
        noise_slug({"kind": "gaussian"})
    assert str(err.value) == (
        "unknown label-noise kind 'gaussian'; accepted: none, uniform, structured, flip, randx"
    )
    with pytest.raises(UnknownNameError, match="accepted: none, uniform, structured, flip, randx"):
        make_noisy_labels(clean_labels(10), C, {"kind": "gaussian"}, seed=0)


def test_noisy_labels_requires_equal_lengths():
    with pytest.raises(ValueError, match="same length"):
        NoisyLabels(np.arange(3), np.zeros(3, np.int64), np.zeros(2, bool))


# ------------------------------------------------------------------------------------- none


def test_none_is_the_clean_training_set():
    labels = clean_labels(50)
    out = noise.none(labels, C, rng())
    np.testing.assert_array_equal(out.indices, np.arange(50))
    np.testing.assert_array_equal(out.labels, labels)
    assert not out.noisy.any()
    assert (out.indices.dtype, out.labels.dtype, out.noisy.dtype) == (np.int64, np.int64, bool)


# ---------------------------------------------------------------------------------- uniform


def test_uniform_counts_and_layout():
    n = 40
    labels = clean_labels(n)
    out = noise.uniform(labels, C, rng(), alpha=3)
    assert len(out.indices) == len(out.labels) == len(out.noisy) == 4 * n
    # the first n entries are the clean set, in order
    np.testing.assert_array_equal(out.indices[:n], np.arange(n))
    np.testing.assert_array_equal(out.labels[:n], labels)
    assert not out.noisy[:n].any()
    # then 3n noisy copies whose indices tile arange(n)
    np.testing.assert_array_equal(out.indices[n:], np.tile(np.arange(n), 3))
    assert out.noisy[n:].all()
    assert out.noisy.sum() == 3 * n
    assert out.labels.min() >= 0 and out.labels.max() < C
    assert (out.indices.dtype, out.labels.dtype, out.noisy.dtype) == (np.int64, np.int64, bool)


def test_uniform_alpha_zero_equals_clean():
    labels = clean_labels(30)
    out = noise.uniform(labels, C, rng(), alpha=0)
    clean = noise.none(labels, C, rng())
    np.testing.assert_array_equal(out.indices, clean.indices)
    np.testing.assert_array_equal(out.labels, clean.labels)
    np.testing.assert_array_equal(out.noisy, clean.noisy)


def test_uniform_labels_are_uniform_over_all_classes():
    n, alpha = 10_000, 2
    labels = clean_labels(n)
    out = noise.uniform(labels, C, rng(7), alpha=alpha)
    noisy = out.labels[out.noisy]
    assert len(noisy) == 20_000
    freq = np.bincount(noisy, minlength=C) / len(noisy)
    assert freq.shape == (C,)
    # each class 0.1 +- 0.01 (the standard error is 0.0021)
    np.testing.assert_allclose(freq, np.full(C, 1 / C), atol=0.01)
    assert stats.chisquare(np.bincount(noisy, minlength=C)).pvalue > 1e-3
    # independent of the true class: the true label is drawn 1/C of the time
    truth = labels[out.indices[out.noisy]]
    assert abs(np.mean(noisy == truth) - 1 / C) < 0.01


# ------------------------------------------------------------------------------- structured


@pytest.mark.parametrize("n_classes", [2, 3, 10, 47])
def test_confusion_map_is_a_derangement(n_classes):
    for seed in range(20):
        m = confusion_map(n_classes, rng(seed))
        assert sorted(m.tolist()) == list(range(n_classes))  # a permutation
        assert not np.any(m == np.arange(n_classes))  # no fixed point


def test_confusion_map_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        confusion_map(1, rng())


def test_structured_counts_and_layout():
    n = 25
    labels = clean_labels(n)
    out = noise.structured(labels, C, rng(), alpha=4, delta=0.5)
    assert len(out.labels) == 5 * n
    np.testing.assert_array_equal(out.indices, np.tile(np.arange(n), 5))
    np.testing.assert_array_equal(out.labels[:n], labels)
    np.testing.assert_array_equal(out.noisy, np.repeat([False, True], [n, 4 * n]))


def test_structured_delta_one_is_the_confusion_map():
    n = 2_000
    labels = clean_labels(n)
    out = noise.structured(labels, C, rng(3), alpha=2, delta=1.0)
    truth = labels[out.indices[out.noisy]]
    noisy = out.labels[out.noisy]
    m = np.full(C, -1)
    for c in range(C):
        seen = np.unique(noisy[truth == c])
        assert len(seen) == 1, f"class {c} is confused with {seen}, expected one fixed class"
        m[c] = seen[0]
    assert sorted(m.tolist()) == list(range(C))
    assert not np.any(m == np.arange(C))


def test_structured_delta_zero_never_picks_the_confusing_class():
    n = 5_000
    labels = clean_labels(n)
    out = noise.structured(labels, C, rng(4), alpha=2, delta=0.0)
    truth = labels[out.indices[out.noisy]]
    noisy = out.labels[out.noisy]
    # every class c has exactly one class that never appears as its noisy label: m[c] != c
    for c in range(C):
        counts = np.bincount(noisy[truth == c], minlength=C)
        missing = np.flatnonzero(counts == 0)
        assert len(missing) == 1 and missing[0] != c, (c, counts)


def test_structured_label_distribution():
    n, alpha, delta = 10_000, 2, 0.5
    labels = clean_labels(n)
    out = noise.structured(labels, C, rng(11), alpha=alpha, delta=delta)
    truth = labels[out.indices[out.noisy]]
    noisy = out.labels[out.noisy]
    assert len(noisy) == 20_000
    # the confusing class of c is the most frequent noisy label of c (delta > 1/(C-1))
    m = np.array([np.bincount(noisy[truth == c], minlength=C).argmax() for c in range(C)])
    assert sorted(m.tolist()) == list(range(C)) and not np.any(m == np.arange(C))

    confusing = noisy == m[truth]
    assert abs(confusing.mean() - delta) < 0.02  # standard error 0.0035
    for c in range(C):
        counts = np.bincount(noisy[truth == c], minlength=C)
        total = counts.sum()
        assert abs(counts[m[c]] / total - delta) < 0.05
        # the remaining mass: uniform over the C-1 classes other than m[c], true class included
        rest = np.delete(counts, m[c])
        assert len(rest) == C - 1
        np.testing.assert_allclose(rest / total, (1 - delta) / (C - 1), atol=0.025)
        assert stats.chisquare(rest).pvalue > 1e-4
    # the true class is among the "other" classes: drawn (1 - delta) / (C - 1) of the time
    assert abs(np.mean(noisy == truth) - (1 - delta) / (C - 1)) < 0.01


# ------------------------------------------------------------------------------------- flip


@pytest.mark.parametrize(("n", "p", "k"), [(10_000, 0.2, 2_000), (7, 0.3, 2), (50, 0.0, 0),
                                           (50, 1.0, 50), (1_000, 0.123, 123)])  # fmt: skip
def test_flip_marks_exactly_round_p_n_labels(n, p, k):
    labels = clean_labels(n)
    out = noise.flip(labels, C, rng(5), p=p)
    assert len(out.labels) == n  # no copies: the training set keeps its size
    np.testing.assert_array_equal(out.indices, np.arange(n))
    assert int(out.noisy.sum()) == k == round(p * n)
    # labels not chosen are unchanged
    np.testing.assert_array_equal(out.labels[~out.noisy], labels[~out.noisy])
    assert out.labels.dtype == np.int64 and out.noisy.dtype == bool


def test_flip_noisy_labels_are_uniform():
    n = 20_000
    labels = clean_labels(n)
    out = noise.flip(labels, C, rng(9), p=0.5)
    noisy = out.labels[out.noisy]
    assert len(noisy) == 10_000
    freq = np.bincount(noisy, minlength=C) / len(noisy)
    np.testing.assert_allclose(freq, np.full(C, 1 / C), atol=0.015)
    # a randomised label may equal the truth, 1/C of the time
    assert abs(np.mean(noisy == labels[out.noisy]) - 1 / C) < 0.015
    # the chosen examples are spread over the classes, not one class
    chosen_classes = np.bincount(labels[out.noisy], minlength=C) / len(noisy)
    np.testing.assert_allclose(chosen_classes, np.full(C, 1 / C), atol=0.015)


# -------------------------------------------------------------------------------- determinism

SPECS = [
    {"kind": "uniform", "alpha": 3},
    {"kind": "structured", "alpha": 3, "delta": 0.4},
    {"kind": "flip", "p": 0.3},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_same_seed_same_labels_different_seed_different(spec):
    labels = clean_labels(500)
    a = make_noisy_labels(labels, C, spec, seed=42)
    b = make_noisy_labels(labels, C, spec, seed=42)
    c = make_noisy_labels(labels, C, spec, seed=43)
    for field in ("indices", "labels", "noisy"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.labels, c.labels)
    if spec["kind"] == "flip":
        assert not np.array_equal(a.noisy, c.noisy)  # a different set of examples is chosen


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["kind"])
def test_make_noisy_labels_applies_the_kind_with_a_seeded_generator(spec):
    labels = clean_labels(300)
    kind = NOISE.get(spec["kind"])
    params = {k: v for k, v in spec.items() if k != "kind"}
    expected = kind.fn(labels, C, np.random.default_rng(17), **params)
    got = make_noisy_labels(labels.tolist(), C, spec, seed=17)  # any array-like
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_array_equal(got.noisy, expected.noisy)


def test_make_noisy_labels_none_and_counts():
    labels = clean_labels(100)
    out = make_noisy_labels(labels, C, {"kind": "none"}, seed=0)
    np.testing.assert_array_equal(out.labels, labels)
    out = make_noisy_labels(labels, C, {"kind": "uniform", "alpha": 5}, seed=0)
    assert len(out.labels) == 600 and out.noisy.sum() == 500
    out = make_noisy_labels(labels, C, {"kind": "structured", "alpha": 1, "delta": 0.5}, seed=0)
    assert len(out.labels) == 200 and out.noisy.sum() == 100
    out = make_noisy_labels(labels, C, {"kind": "flip", "p": 0.25}, seed=0)
    assert len(out.labels) == 100 and out.noisy.sum() == 25


# ---------------------------------------------------------------------------------- storage


def test_save_load_round_trip(tmp_path):
    out = make_noisy_labels(clean_labels(200), C, {"kind": "uniform", "alpha": 2}, seed=1)
    path = tmp_path / "labels" / "uniform-a2.npz"  # parent created on save
    save_noisy_labels(out, path)
    back = load_noisy_labels(path)
    for field in ("indices", "labels", "noisy"):
        got, want = getattr(back, field), getattr(out, field)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert len(back.labels) == 600
    # the write is atomic: no temporary file is left beside the result
    assert sorted(p.name for p in path.parent.iterdir()) == ["uniform-a2.npz"]


def test_alpha_100_stores_only_integer_pairs(tmp_path):
    n, alpha = 5_000, 100
    out = make_noisy_labels(clean_labels(n), C, {"kind": "uniform", "alpha": alpha}, seed=2)
    m = n * (alpha + 1)
    assert m == 505_000
    assert out.indices.shape == out.labels.shape == out.noisy.shape == (m,)
    assert (out.indices.dtype, out.labels.dtype, out.noisy.dtype) == (np.int64, np.int64, bool)
    assert out.indices.nbytes == out.labels.nbytes == 8 * m
    assert out.noisy.nbytes == m
    total = out.indices.nbytes + out.labels.nbytes + out.noisy.nbytes
    assert total == 17 * m == 8_585_000
    path = tmp_path / "a100.npz"
    save_noisy_labels(out, path)
    assert total <= path.stat().st_size < total + 4096  # the arrays plus npz headers only
