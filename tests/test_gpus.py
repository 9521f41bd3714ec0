"""GPU leases for local multi-GPU runs, tested without a GPU: fake GPU ids, real lock files
and real processes (a lease must survive only as long as its process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from corruptlab.core.gpus import default_lock_dir, gpu_lease, visible_gpus


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0,1,2", ["0", "1", "2"]),
        ("3", ["3"]),
        ("", []),
        ("-1", []),
        ("1,-1,2", ["1"]),  # CUDA ignores everything after an invalid entry
        (" 2 , 0 ", ["2", "0"]),
        ("GPU-8f6c,GPU-1a2b", ["GPU-8f6c", "GPU-1a2b"]),
    ],
)
def test_visible_gpus_from_cuda_visible_devices(value, expected, tmp_path):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": value}, proc_dir=str(tmp_path)) == expected


def test_visible_gpus_from_the_driver(tmp_path):
    for bus in ("0000:01:00.0", "0000:02:00.0", "0000:81:00.0"):
        (tmp_path / bus).mkdir()
    assert visible_gpus({}, proc_dir=str(tmp_path)) == ["0", "1", "2"]
    assert visible_gpus({}, proc_dir=str(tmp_path / "missing")) == []


def test_lock_dir_follows_the_environment(tmp_path):
    assert default_lock_dir({"CORRUPTLAB_GPU_LOCK_DIR": str(tmp_path)}) == tmp_path
    assert f"corruptlab-gpu-locks-{os.getuid()}" in str(default_lock_dir({}))


def test_concurrent_leases_get_distinct_gpus_and_restore_the_environment(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2"}
    with gpu_lease("auto", lock_dir=tmp_path, environ=env) as a:
        assert env["CUDA_VISIBLE_DEVICES"] == a
        inner = {"CUDA_VISIBLE_DEVICES": "0,1,2"}
        with gpu_lease("cuda", lock_dir=tmp_path, environ=inner) as b:
            assert inner["CUDA_VISIBLE_DEVICES"] == b
            assert {a, b} <= {"0", "1", "2"} and a != b
    assert env == {"CUDA_VISIBLE_DEVICES": "0,1,2"}
    assert inner == {"CUDA_VISIBLE_DEVICES": "0,1,2"}
    with gpu_lease("auto", lock_dir=tmp_path, environ=env) as again:  # released: first is free
        assert again == a == "0"


@pytest.mark.parametrize(
    ("device", "value", "expected"),
    [
        ("cpu", "0,1", None),
        ("cuda:1", "0,1", None),  # an explicit device is the user's choice
        ("auto", "5", "5"),  # one GPU: nothing to choose (e.g. SLURM gave the job its own)
        ("auto", "", None),  # a CPU machine
    ],
)
def test_no_lease_when_there_is_nothing_to_choose(tmp_path, device, value, expected):
    env = {"CUDA_VISIBLE_DEVICES": value}
    with gpu_lease(device, lock_dir=tmp_path / "locks", environ=env) as gpu:
        assert gpu == expected and env == {"CUDA_VISIBLE_DEVICES": value}
    assert not (tmp_path / "locks").exists()


def test_the_environment_is_restored_after_an_exception(tmp_path):
    env = {}
    with pytest.raises(RuntimeError, match="boom"):
        with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ=env) as gpu:
            assert env["CUDA_VISIBLE_DEVICES"] == gpu
            raise RuntimeError("boom")
    assert env == {}
    with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ={}) as gpu:
        assert gpu == "0"  # the lease ended with the exception


HOLDER = """
import sys, time
from corruptlab.core.gpus import gpu_lease
with gpu_lease("auto", gpus=["0", "1"], lock_dir=sys.argv[1], environ={}, poll_seconds=0.05) as g:
    print(g, flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock_dir, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_killed_job_releases_its_gpu(tmp_path):
    child = _holder(tmp_path, 60)
    assert child.stdout.readline().strip() == "0"
    with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ={}) as gpu:
        assert gpu == "1"  # the child holds 0
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ={}) as gpu:
        assert gpu == "0"  # no stale lease after the kill


def test_a_job_waits_while_every_gpu_is_leased(tmp_path):
    env = {}
    with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ=env) as first:
        with gpu_lease("auto", gpus=["0", "1"], lock_dir=tmp_path, environ={}) as second:
            child = _holder(tmp_path, 0)
            time.sleep(1.0)
            assert child.poll() is None  # still waiting: both GPUs are leased
        # the second lease ended: the waiting child takes that GPU
        out, _ = child.communicate(timeout=20)
        assert out.strip() == second and first != second
