"""Out-of-distribution (OOD) detection: scores, metrics and OOD sets that need no network.

Scores (a registry, ``SCORES``) map a classifier's logits [N, C] to one number per example, with
the convention **higher = more in-distribution** for every score, so that the in-distribution
test set is the positive class throughout:

- ``msp``: the maximum softmax probability (Hendrycks & Gimpel 2017, the baseline);
- ``entropy``: the negative predictive entropy in nats (higher = more confident);
- ``energy``: the negative energy at temperature T = 1, i.e. ``logsumexp`` of the logits
  (Liu et al. 2020, *Energy-based Out-of-distribution Detection*);
- ``max_logit``: the largest logit.

Scores are computed in float64 on the device of the logits and returned there.

``ood_metrics`` compares the scores of an in-distribution set with those of an OOD set with
scikit-learn (AUROC, FPR at 95% TPR, AUPR-In, AUPR-Out). OOD image sets (a registry,
``OOD_SETS``) draw synthetic images from a prepared dataset's statistics; corrupted test sets,
held-out classes (see ``held_out_split``) and downloaded datasets are wired elsewhere.

Import-light: torch and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from corruptlab.core.registry import Registry
from corruptlab.core.seeding import derive_seed

if TYPE_CHECKING:
    import torch

ScoreFn = Callable[["torch.Tensor"], "torch.Tensor"]
SCORES: Registry[ScoreFn] = Registry("OOD score")

OodSetFn = Callable[[dict, int, int], "torch.Tensor"]
OOD_SETS: Registry[OodSetFn] = Registry("OOD set")

TPR_LEVEL = 0.95  # the true positive rate (in-distribution) at which ``fpr95`` is read


# ------------------------------------------------------------------------------------ scores


def _as_logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() != 2 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape [N, C] with C >= 1, got {tuple(logits.shape)}")
    return logits.double()


@SCORES.register("msp")
def msp(logits: torch.Tensor) -> torch.Tensor:
    """Maximum softmax probability (Hendrycks & Gimpel 2017); higher = more in-distribution."""
    return _as_logits(logits).softmax(1).max(1).values


@SCORES.register("entropy")
def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Negative predictive entropy (nats), in [-ln C, 0]; higher = more in-distribution.

    Classes whose probability underflows to 0 contribute 0 (the limit of p ln p).
    """
    import torch

    logp = _as_logits(logits).log_softmax(1)
    p = logp.exp()
    return torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(1)


@SCORES.register("energy")
def neg_energy(logits: torch.Tensor) -> torch.Tensor:
    """Negative energy at T = 1, ``logsumexp`` of the logits (Liu et al. 2020); higher = more
    in-distribution."""
    return _as_logits(logits).logsumexp(1)


@SCORES.register("max_logit")
def max_logit(logits: torch.Tensor) -> torch.Tensor:
    """Largest logit (Hendrycks et al. 2022's MaxLogit); higher = more in-distribution."""
    return _as_logits(logits).max(1).values


def compute_scores(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every registered score on one set of logits."""
    return {name: fn(logits) for name, fn in SCORES.items()}


# ----------------------------------------------------------------------------------- metrics


def _as_scores(values: Any, which: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{which} scores must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{which} scores are empty: OOD metrics need at least one example each")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{which} scores contain {bad} non-finite value(s) (NaN or inf)")
    return arr


def ood_metrics(score_in: Any, score_out: Any) -> dict[str, float | int]:
    """OOD detection metrics from the scores of in-distribution and OOD examples.

    Scores follow the ``SCORES`` convention (higher = more in-distribution) and may be numpy
    arrays, sequences or tensors (1-D, finite). An example is called in-distribution when its
    score is >= a threshold; tied scores are therefore always on the same side of it. Returns:

    - ``auroc``: area under the ROC curve with in-distribution as the positive class, i.e.
      P(score_in > score_out) + 0.5 P(score_in == score_out) (``roc_auc_score``);
    - ``fpr95``: the fraction of OOD examples called in-distribution at a TPR (fraction of
      in-distribution examples called in-distribution) of at least 95%; precisely, the smallest
      FPR among the points of ``sklearn.metrics.roc_curve`` (every distinct score as a
      threshold, ``drop_intermediate=False``) whose TPR >= 0.95. Deterministic under ties;
      a TPR of exactly 0.95 (e.g. 19 of 20) qualifies;
    - ``aupr_in``: average precision with in-distribution positive (``average_precision_score``);
    - ``aupr_out``: average precision with OOD positive, on the negated scores;
    - ``n_in``, ``n_out``: the number of examples in each set.

    Raises ValueError if either set is empty or holds non-finite scores.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    s_in = _as_scores(score_in, "in-distribution")
    s_out = _as_scores(score_out, "OOD")
    scores = np.concatenate([s_in, s_out])
    is_in = np.concatenate([np.ones(len(s_in), np.int64), np.zeros(len(s_out), np.int64)])

    fpr, tpr, _ = roc_curve(is_in, scores, drop_intermediate=False)
    # TPR = tps / n_in with integer counts and correctly rounded division, so k / n == 0.95
    # exactly when k / n is 95%; the last ROC point has TPR 1, so the set is never empty
    fpr95 = float(fpr[tpr >= TPR_LEVEL].min())
    return {
        "auroc": float(roc_auc_score(is_in, scores)),
        "fpr95": fpr95,
        "aupr_in": float(average_precision_score(is_in, scores)),
        "aupr_out": float(average_precision_score(1 - is_in, -scores)),
        "n_in": len(s_in),
        "n_out": len(s_out),
    }


ROC_GRID = np.linspace(0.0, 1.0, 101)  # false positive rates at which ROC curves are stored


def roc_points(score_in: Any, score_out: Any, grid: np.ndarray = ROC_GRID) -> np.ndarray:
    """The ROC curve (in-distribution positive) read at the false positive rates ``grid``:
    the highest TPR among thresholds whose FPR is at most each grid value (the exact step
    curve, so curves of several seeds can be averaged point by point)."""
    from sklearn.metrics import roc_curve

    s_in = _as_scores(score_in, "in-distribution")
    s_out = _as_scores(score_out, "OOD")
    is_in = np.concatenate([np.ones(len(s_in), np.int64), np.zeros(len(s_out), np.int64)])
    fpr, tpr, _ = roc_curve(is_in, np.concatenate([s_in, s_out]), drop_intermediate=False)
    # fpr and tpr are non-decreasing and fpr[0] == 0: the last point with fpr <= g has max tpr
    return tpr[np.searchsorted(fpr, np.asarray(grid, np.float64), side="right") - 1]


# ---------------------------------------------------------------------------------- OOD sets


def _check_set_args(data: dict, n: int, seed: int) -> torch.Tensor:
    for name, value in (("n", n), ("seed", seed)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    images = data.get("train_images") if isinstance(data, dict) else None
    if images is None:
        raise ValueError("data must be a prepared dataset dict with 'train_images'")
    import torch

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError("data['train_images'] must be a uint8 tensor [N, H, W]")
    if images.numel() == 0:
        raise ValueError("data['train_images'] is empty")
    return images


def _generator(seed: int) -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(int(seed))


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) standard deviation of all pixels of uint8 images, in 0..255 units
    (corruptlab.data.datasets.normalization_stats, which works in the 0..1 scale, rescaled)."""
    from corruptlab.data.datasets import normalization_stats

    mean, std = normalization_stats(images.cpu())
    return 255.0 * mean, 255.0 * std


@OOD_SETS.register("gaussian_noise")
def gaussian_noise(data: dict, n: int, seed: int) -> torch.Tensor:
    """Pixels i.i.d. N(mean, std) of the training pixels, rounded and clipped to 0..255.

    Clipping moves the sample's statistics away from the training ones when the training
    distribution is close to 0 or 255 (as MNIST's mostly black background is).
    """
    import torch

    images = _check_set_args(data, n, seed)
    mean, std = pixel_stats(images)
    shape = (int(n), *images.shape[1:])
    noise = torch.randn(shape, generator=_generator(seed), dtype=torch.float64)
    return (noise * std + mean).round().clamp(0, 255).to(torch.uint8)


@OOD_SETS.register("uniform_noise")
def uniform_noise(data: dict, n: int, seed: int) -> torch.Tensor:
    """Pixels i.i.d. uniform on the integers 0..255, of the training images' size."""
    import torch

    images = _check_set_args(data, n, seed)
    shape = (int(n), *images.shape[1:])
    return torch.randint(0, 256, shape, generator=_generator(seed), dtype=torch.uint8)


# Hendrycks & Gimpel 2017's synthetic OOD sets as their code draws them for MNIST (whose images
# it feeds on the [0, 1] scale): "Gaussian", pixels i.i.d. N(0, 1), and "Uniform", pixels i.i.d.
# U(0, 1), neither clipped nor rounded. Returned as float64 images on the 0..255 scale (pixel
# value x 255), which corruptlab.data.datasets.normalize standardises like uint8 ones.


@OOD_SETS.register("hendrycks_gaussian")
def hendrycks_gaussian(data: dict, n: int, seed: int) -> torch.Tensor:
    """Hendrycks & Gimpel's "Gaussian": pixels i.i.d. N(0, 1) on the [0, 1] pixel scale, not
    clipped (about half the pixels are negative), as float64 on the 0..255 scale."""
    import torch

    images = _check_set_args(data, n, seed)
    shape = (int(n), *images.shape[1:])
    return torch.randn(shape, generator=_generator(seed), dtype=torch.float64) * 255.0


@OOD_SETS.register("hendrycks_uniform")
def hendrycks_uniform(data: dict, n: int, seed: int) -> torch.Tensor:
    """Hendrycks & Gimpel's "Uniform": pixels i.i.d. U(0, 1) on the [0, 1] pixel scale, not
    rounded to 8 bits, as float64 on the 0..255 scale."""
    import torch

    images = _check_set_args(data, n, seed)
    shape = (int(n), *images.shape[1:])
    return torch.rand(shape, generator=_generator(seed), dtype=torch.float64) * 255.0


# ----------------------------------------------------------------------- held-out classes


def held_out_split(labels: Any, in_classes: Sequence[int]) -> tuple[Any, Any]:
    """Boolean masks (in_mask, out_mask) of examples whose label is / is not in ``in_classes``.

    For studies that train on a subset of the classes and treat the others as OOD. ``labels``
    is a 1-D integer numpy array, sequence or tensor; the masks are tensors on the same device
    for a tensor, numpy arrays otherwise. ``in_classes`` must be a non-empty proper subset of
    the classes present in ``labels``, without duplicates; ValueError otherwise.
    """
    is_tensor = hasattr(labels, "detach")
    arr = labels.detach().cpu().numpy() if is_tensor else np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    wanted = list(in_classes)
    for c in wanted:
        if not isinstance(c, int | np.integer) or isinstance(c, bool):
            raise ValueError(f"in_classes must be integers, got {c!r}")
    wanted = [int(c) for c in wanted]
    if not wanted:
        raise ValueError("in_classes is empty: at least one class must be in-distribution")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"in_classes has duplicates: {wanted}")
    present = {int(c) for c in np.unique(arr)}
    missing = sorted(set(wanted) - present)
    if missing:
        raise ValueError(
            f"in_classes {missing} do not occur in the labels (classes present: {sorted(present)})"
        )
    if set(wanted) == present:
        raise ValueError(
            f"in_classes {sorted(wanted)} are all the classes in the labels: "
            "at least one class must be held out as OOD"
        )
    in_mask = np.isin(arr, wanted)
    out_mask = ~in_mask
    if is_tensor:
        import torch

        device = labels.device
        return torch.from_numpy(in_mask).to(device), torch.from_numpy(out_mask).to(device)
    return in_mask, out_mask


# what identifies a row of a run's ood.parquet (besides its run): the set and the score
OOD_KEYS = ["ood_family", "ood_set", "score"]


# --- OOD sets ----------------------------------------------------------------------------------

OOD_FAMILIES = ("synthetic", "corruption", "dataset", "held_out")


def ood_set_name(spec: dict) -> str:
    """The name of an OOD set in tables: the synthetic set's, ``<corruption>_s<severity>``, the
    dataset's, or ``held_out_classes``."""
    if spec["family"] == "corruption":
        return f"{spec['name']}_s{spec['severity']}"
    return spec["name"]


def load_ood_set(spec: dict, data: dict) -> Any:
    """The images [N, H, W] of one OOD set for a run trained on ``data``: uint8, or float64 on
    the same 0..255 scale for the synthetic sets whose pixels leave it (hendrycks_gaussian).

    ``spec["family"]`` is ``synthetic`` (a corruptlab.eval.ood.OOD_SETS entry, as many images as the
    test set, drawn with a seed of the dataset and set alone so every run sees the same images),
    ``corruption`` (a corrupted test set file, ``path``), ``dataset`` (the test split of another
    prepared dataset, ``path``) or ``held_out`` (the test images of the classes the run was not
    trained on)."""
    from corruptlab.eval.ood import OOD_SETS

    family = spec.get("family")
    if family == "synthetic":
        seed = derive_seed(data["name"], "ood", spec["name"])
        return OOD_SETS.get(spec["name"])(data, len(data["test_labels"]), seed)
    if family == "corruption":
        from corruptlab.eval.evaluation import load_condition

        images, _ = load_condition({"name": spec["name"], "path": spec["path"]}, data)
        return images
    if family == "dataset":
        from corruptlab.data.datasets import load_prepared

        other = load_prepared(spec["path"])
        if tuple(other["test_images"].shape[1:]) != tuple(data["test_images"].shape[1:]):
            raise ValueError(
                f"OOD dataset {other['name']!r} has images of shape "
                f"{tuple(other['test_images'].shape[1:])}, the model was trained on "
                f"{tuple(data['test_images'].shape[1:])}"
            )
        return other["test_images"]
    if family == "held_out":
        if "held_out_images" not in data:
            raise ValueError("the held_out OOD set needs a study trained on in_classes")
        return data["held_out_images"]
    raise ValueError(f"unknown OOD set family {family!r}; accepted: {', '.join(OOD_FAMILIES)}")
