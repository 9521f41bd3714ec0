"""Exclusive GPU leases for local jobs on a machine with several GPUs.

Snakemake's ``gpu`` resource is only a counter: ``snakemake --cores all --resources gpu=4``
runs at most four GPU jobs at once but does not tell a job *which* GPU is its own. So before a
job initialises CUDA it takes a lease: an exclusive ``flock`` on one lock file per GPU in a
directory shared by the jobs of this user on this machine, and sets ``CUDA_VISIBLE_DEVICES``
to that GPU alone. The lease ends when the job leaves the ``with`` block; if the job crashes or
is killed, the kernel drops the lock with the process, so no stale lease survives.

Nothing here imports torch or initialises CUDA: visible GPUs are read from
``CUDA_VISIBLE_DEVICES`` (set by SLURM and by users) or from the NVIDIA driver's ``/proc``
entries. With fewer than two visible GPUs (a laptop, a SLURM job given its own GPU), there is
nothing to choose and no lease is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path

log = logging.getLogger("corruptlab")

LOCK_DIR_ENV = "CORRUPTLAB_GPU_LOCK_DIR"
NVIDIA_PROC = "/proc/driver/nvidia/gpus"
LEASED_DEVICES = ("auto", "cuda")  # an explicit cuda:N or cpu is the user's own choice


def visible_gpus(
    environ: MutableMapping[str, str] | None = None, proc_dir: str = NVIDIA_PROC
) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries, without CUDA.

    ``CUDA_VISIBLE_DEVICES`` wins when set: its entries up to the first invalid one (CUDA
    ignores the rest; ``-1`` or an empty value hides every GPU). Otherwise the driver's
    ``/proc`` directory has one entry per GPU, numbered ``0..n-1``; no driver, no GPU.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        ids = []
        for entry in (e.strip() for e in value.split(",")):
            if not entry or entry.startswith("-"):
                break
            ids.append(entry)
        return ids
    try:
        return [str(i) for i in range(len(os.listdir(proc_dir)))]
    except OSError:
        return []


def default_lock_dir(environ: MutableMapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(LOCK_DIR_ENV):
        return Path(environ[LOCK_DIR_ENV])
    return Path(tempfile.gettempdir()) / f"corruptlab-gpu-locks-{os.getuid()}"


def _lock_file(lock_dir: Path, gpu: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock"


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious user
    return fd


@contextlib.contextmanager
def gpu_lease(
    device: str = "auto",
    *,
    gpus: Sequence[str] | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    environ: MutableMapping[str, str] | None = None,
    poll_seconds: float = 1.0,
) -> Iterator[str | None]:
    """Hold one visible GPU exclusively for the ``with`` block; yields its id, or None.

    Only for ``device`` ``auto`` or ``cuda`` with at least two visible GPUs (``gpus``
    overrides the discovery, for tests); otherwise yields the single visible GPU or None and
    changes nothing. While held, ``CUDA_VISIBLE_DEVICES`` names the leased GPU alone (so
    ``cuda`` means it); the previous value is restored afterwards. When every GPU is leased the
    call waits, polling every ``poll_seconds``, until one is released.
    """
    environ = os.environ if environ is None else environ
    ids = list(visible_gpus(environ) if gpus is None else gpus)
    if device not in LEASED_DEVICES or len(ids) < 2:
        yield ids[0] if len(ids) == 1 and device in LEASED_DEVICES else None
        return
    directory = Path(lock_dir) if lock_dir is not None else default_lock_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    waited_since = None
    while True:
        for gpu in ids:
            fd = _try_lock(_lock_file(directory, gpu))
            if fd is None:
                continue
            if waited_since is not None:
                log.info("leased GPU %s after waiting %.0f s", gpu, time.monotonic() - waited_since)
            else:
                log.info("leased GPU %s of %s", gpu, ",".join(ids))
            previous = environ.get("CUDA_VISIBLE_DEVICES")
            environ["CUDA_VISIBLE_DEVICES"] = gpu
            try:
                yield gpu
            finally:
                if previous is None:
                    environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if waited_since is None:
            waited_since = time.monotonic()
            log.info(
                "all %d GPUs (%s) are leased by other jobs (locks in %s); waiting",
                len(ids),
                ",".join(ids),
                directory,
            )
        time.sleep(poll_seconds)
