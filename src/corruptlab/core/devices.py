"""Device choice and thread settings for a job."""

from __future__ import annotations

import os


def resolve_device(requested: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; explicit names are checked."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} was requested (config key 'device') but no CUDA GPU is "
            "visible; use 'auto' or 'cpu'"
        )
    return requested


def configure_torch(threads: int, device: str) -> None:
    """Threads follow the rule's ``threads:``; deterministic kernels on the GPU.

    On the CPU the kernels corruptlab uses are deterministic for a fixed thread count (the
    tests check that a run repeated gives identical history and weights), so the CPU path skips
    ``torch.use_deterministic_algorithms``, whose import of torch's compiler stack costs each job
    more than a second.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
