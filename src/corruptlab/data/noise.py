"""Training-noise kinds (a registry). Each kind turns the clean training labels into a noisy
training set described by indices into the clean training images plus a label per index: alpha =
100 copies of MNIST cost 5.5 M int64 pairs, never image copies. Input noise (Arpit's randX) uses
the same form: an index at or past the number of clean images names a synthetic noise image that
the trainer appends (``n_synthetic`` of them), so no image is stored here either.

All kinds are pure numpy functions of (labels, n_classes, rng, params); the caller seeds ``rng``
from (study, noise spec, seed). Validation and test labels are never passed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry
from corruptlab.core.seeding import derive_seed


@dataclass(frozen=True)
class NoisyLabels:
    """The noisy training set: example ``k`` is image ``indices[k]`` with label ``labels[k]``."""

    indices: np.ndarray  # int64 [M], into the clean training images (then synthetic ones)
    labels: np.ndarray  # int64 [M]
    noisy: np.ndarray  # bool [M]: label drawn by the noise process (may equal the truth) or
    # input replaced by noise
    n_synthetic: int = 0  # synthetic noise images appended after the clean ones (randX)

    def __post_init__(self) -> None:
        if not (len(self.indices) == len(self.labels) == len(self.noisy)):
            raise ValueError("indices, labels and noisy must have the same length")


NoiseFn = Callable[..., NoisyLabels]


@dataclass(frozen=True)
class NoiseKind:
    name: str
    params: tuple[Param, ...]
    fn: NoiseFn

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]

    def slug(self, values: dict) -> str:
        return slug(self.name, self.params, values)


NOISE: Registry[NoiseKind] = Registry("label-noise kind")


def noise_kind(name: str, *params: Param) -> Callable[[NoiseFn], NoiseFn]:
    def decorate(fn: NoiseFn) -> NoiseFn:
        NOISE.add(name, NoiseKind(name, params, fn))
        return fn

    return decorate


ALPHA = Param("alpha", "a", int, 0, None, doc="noisy copies per clean training example")


def _clean(labels: np.ndarray) -> NoisyLabels:
    n = len(labels)
    return NoisyLabels(np.arange(n, dtype=np.int64), labels.astype(np.int64), np.zeros(n, bool))


def _with_copies(labels: np.ndarray, alpha: int, noisy_labels: np.ndarray) -> NoisyLabels:
    clean = _clean(labels)
    copies = np.tile(np.arange(len(labels), dtype=np.int64), alpha)
    return NoisyLabels(
        np.concatenate([clean.indices, copies]),
        np.concatenate([clean.labels, noisy_labels.astype(np.int64)]),
        np.concatenate([clean.noisy, np.ones(len(copies), bool)]),
    )


@noise_kind("none")
def none(labels: np.ndarray, n_classes: int, rng: np.random.Generator) -> NoisyLabels:
    """Clean labels."""
    return _clean(labels)


@noise_kind("uniform", ALPHA)
def uniform(
    labels: np.ndarray, n_classes: int, rng: np.random.Generator, alpha: int
) -> NoisyLabels:
    """Rolnick et al.: every clean example plus alpha copies labelled uniformly over all classes."""
    return _with_copies(labels, alpha, rng.integers(0, n_classes, size=alpha * len(labels)))


def confusion_map(n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A random derangement: ``m[c]`` is the fixed confusing class of class ``c`` (never ``c``)."""
    if n_classes < 2:
        raise ValueError("a confusing class needs at least 2 classes")
    while True:
        m = rng.permutation(n_classes)
        if not np.any(m == np.arange(n_classes)):
            return m


@noise_kind(
    "structured",
    ALPHA,
    Param("delta", "d", float, 0.0, 1.0, doc="probability of the confusing class"),
)
def structured(
    labels: np.ndarray, n_classes: int, rng: np.random.Generator, alpha: int, delta: float
) -> NoisyLabels:
    """Rolnick et al. sec. 4: alpha noisy copies; the confusing class w.p. delta, else uniform.

    Each class ``c`` has one fixed confusing class ``m[c] != c`` (a random derangement drawn from
    ``rng``). A noisy label is ``m[c]`` with probability ``delta``, otherwise uniform over the
    other ``n_classes - 1`` classes (every class but the confusing one, the true class included).
    """
    m = confusion_map(n_classes, rng)
    true = np.tile(labels.astype(np.int64), alpha)
    confusing = m[true]
    # uniform over the classes other than the confusing one: draw in [0, C-1) and skip m[c]
    other = rng.integers(0, n_classes - 1, size=len(true))
    other = other + (other >= confusing)
    pick = rng.random(len(true)) < delta
    return _with_copies(labels, alpha, np.where(pick, confusing, other))


@noise_kind("flip", Param("p", "p", float, 0.0, 1.0, doc="fraction of labels randomised"))
def flip(labels: np.ndarray, n_classes: int, rng: np.random.Generator, p: float) -> NoisyLabels:
    """Arpit et al. randY: a fraction p of the training labels replaced by uniform random labels."""
    out = _clean(labels)
    k = int(round(p * len(labels)))
    chosen = rng.choice(len(labels), size=k, replace=False)
    new_labels = out.labels.copy()
    new_labels[chosen] = rng.integers(0, n_classes, size=k)
    noisy = np.zeros(len(labels), bool)
    noisy[chosen] = True
    return NoisyLabels(out.indices, new_labels, noisy)


@noise_kind("randx", Param("p", "p", float, 0.0, 1.0, doc="fraction of inputs randomised"))
def randx(labels: np.ndarray, n_classes: int, rng: np.random.Generator, p: float) -> NoisyLabels:
    """Arpit et al. randX: a fraction p of the training inputs replaced by Gaussian noise.

    The noise images match the training pixels' mean and standard deviation (standard normal
    after the trainer's normalisation); each randomised example keeps its label. Example ``i``
    chosen becomes synthetic image ``N + j``; the trainer draws the ``n_synthetic`` images.
    """
    out = _clean(labels)
    n = len(labels)
    k = int(round(p * n))
    chosen = np.sort(rng.choice(n, size=k, replace=False))
    indices = out.indices.copy()
    indices[chosen] = n + np.arange(k)
    noisy = np.zeros(n, bool)
    noisy[chosen] = True
    return NoisyLabels(indices, out.labels, noisy, n_synthetic=k)


def make_noisy_labels(labels: np.ndarray, n_classes: int, spec: dict, seed: int) -> NoisyLabels:
    """Apply the noise ``spec`` (``{"kind": ..., **params}``) with a generator seeded ``seed``."""
    kind = NOISE.get(spec["kind"])
    values = {p.name: spec[p.name] for p in kind.params}
    rng = np.random.default_rng(seed)
    return kind.fn(np.asarray(labels), n_classes, rng, **values)


def variant_of(noise: dict) -> str:
    """Arpit et al.'s name of a data variant: real (no noise), randX (every input replaced by
    noise), randY (every label drawn at random); else the noise spec's slug."""
    kind = noise["kind"]
    if kind == "none":
        return "real"
    if kind in ("randx", "flip") and noise.get("p") == 1:
        return "randX" if kind == "randx" else "randY"
    return noise_slug(noise)


def noise_slug(spec: dict) -> str:
    kind = NOISE.get(spec["kind"])
    return kind.slug(spec)


def save_noisy_labels(noisy: NoisyLabels, path) -> None:
    from corruptlab.core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            indices=noisy.indices,
            labels=noisy.labels,
            noisy=noisy.noisy,
            n_synthetic=np.int64(noisy.n_synthetic),
        )


def load_noisy_labels(path) -> NoisyLabels:
    with np.load(path) as z:
        n_synthetic = int(z["n_synthetic"]) if "n_synthetic" in z else 0
        return NoisyLabels(z["indices"], z["labels"], z["noisy"], n_synthetic)


# --- the noisy training set as a run trains on it ----------------------------------------------


def labels_seed(run_or_study: str, noise_slug: str, seed: int) -> int:
    """Label noise is a function of (study, noise spec, seed) only: shared by every model."""
    return derive_seed(run_or_study, "labels", noise_slug, seed)


def synthetic_inputs(run: dict, noisy, shape) -> Any:
    """randX's noise images of a run (normalised input space: N(0, 1), i.e. the data's mean and
    standard deviation), drawn from the run's data seed (``data_seed``, else its seed)."""
    import torch

    seed = run.get("data_seed", run["seed"])
    g = torch.Generator().manual_seed(labels_seed(run["study"], run["noise_slug"], seed) + 1)
    return torch.randn((noisy.n_synthetic, *shape), generator=g)


def training_examples(run: dict, data: dict, labels_path: str, mean: float, std: float, n: int):
    """``n`` examples of a run's training set as it was trained on, the same in every seed
    (``datasets.example_subset`` of the run's data seed): (positions in the training set
    [n], normalised images [n, C, H, W], labels [n]); randX's noise images and randY's labels
    included."""
    import torch

    from corruptlab.data.datasets import example_subset, normalize

    noisy = load_noisy_labels(labels_path)
    positions = example_subset(len(noisy.indices), n, run.get("data_seed", run["seed"]))
    images = normalize(data["train_images"], mean, std)
    if noisy.n_synthetic:
        images = torch.cat([images, synthetic_inputs(run, noisy, images.shape[1:])])
    idx = torch.from_numpy(noisy.indices[positions])
    return positions, images.index_select(0, idx), torch.from_numpy(noisy.labels[positions])
