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


def configure_torch(threads: int, device: str, deterministic: bool = True) -> None:
    """Threads follow the rule's ``threads:``; deterministic kernels where torch has them."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    if deterministic:
        if device.startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.startswith("cuda"))
