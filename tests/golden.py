"""Golden tables: the tables of the end-to-end test studies as the code computed them when they
were last regenerated, committed under tests/golden/<cpu>/<study>/. A restructuring of the code
must reproduce them value for value; a change that is meant to change numbers regenerates them:

    CORRUPTLAB_UPDATE_GOLDEN=1 uv run pytest tests/test_workflow.py tests/test_memorization_study.py

and the diff of tests/golden/ shows (and the commit says) which numbers moved.

One set per CPU capability (``torch.backends.cpu.get_cpu_capability()``: AVX2, AVX512): CPU
training is deterministic on one machine, but PyTorch, MKL and oneDNN pick other vector kernels
on AVX-512, which sum in another order, and a few epochs amplify the last bits into other
predictions (the batch-norm ConvNet of the shift study: 21 of 4,000 test predictions and up to
0.3 points of accuracy between an AVX2 and an AVX-512 machine, each identical run to run). A
change meant to move numbers regenerates the set of the machine it runs on and says so; the
other set then waits for a machine of its kind (its test fails there, naming the set).

Compared: every column of the golden table except provenance and timing (which differ from run
to run), rows in a canonical order (sorted by their non-float columns). Floats must agree to
rtol 1e-6 (identical on one machine; the slack only absorbs float formatting).
A column the code adds is allowed; one it drops, or a changed value, fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

UPDATE = os.environ.get("CORRUPTLAB_UPDATE_GOLDEN") == "1"
# columns that differ from run to run, whatever the code
VOLATILE = {
    "corruptlab_version",
    "git_commit",
    "torch_version",
    "device",
    "train_seconds",
    "job_seconds",
    "seconds",
    "resumed_from_epoch",
}
VOLATILE_METRICS = {"train_seconds"}  # summary rows of a timing metric


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels use here (avx2, avx512, ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability().lower()


def golden_dir() -> Path:
    """This machine's set of golden tables: tests/golden/<cpu capability>/."""
    return Path(__file__).resolve().parent / "golden" / cpu_capability()


def _comparable(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    table = table[columns]
    if "metric" in table:
        table = table[~table["metric"].isin(VOLATILE_METRICS)]
    # a list cell (an ROC curve) compares as a tuple, sorts as text
    table = table.apply(
        lambda c: c.map(tuple) if c.map(lambda v: isinstance(v, list | np.ndarray)).any() else c
    )
    keys = [
        c for c in columns if not pd.api.types.is_float_dtype(table[c]) and table[c].notna().any()
    ]
    order = table[keys].astype(str).apply(tuple, axis=1).argsort(kind="stable")
    return table.iloc[np.asarray(order)].reset_index(drop=True)


def check_tables(tables_dir: Path, study: str, names: list[str]) -> None:
    """Compare (or, with CORRUPTLAB_UPDATE_GOLDEN=1, write) the study's tables ``names``."""
    for name in names:
        current = pd.read_parquet(tables_dir / f"{name}.parquet")
        golden_path = golden_dir() / study / f"{name}.parquet"
        if UPDATE:
            golden_path.parent.mkdir(parents=True, exist_ok=True)
            keep = [c for c in current.columns if c not in VOLATILE]
            current[keep].to_parquet(golden_path, index=False)
            continue
        assert golden_path.exists(), (
            f"no golden table {golden_path} for this machine's CPU capability "
            f"({cpu_capability()}): write the set with CORRUPTLAB_UPDATE_GOLDEN=1 on a commit "
            "whose tables match another capability's set (tests/golden/*/), and commit it"
        )
        golden = pd.read_parquet(golden_path)
        missing = [c for c in golden.columns if c not in current.columns]
        assert not missing, f"{study}/{name}: columns gone: {missing}"
        columns = list(golden.columns)
        a, b = _comparable(current, columns), _comparable(golden, columns)
        assert len(a) == len(b), f"{study}/{name}: {len(a)} rows, golden has {len(b)}"
        for c in columns:
            x, y = a[c], b[c]
            if pd.api.types.is_float_dtype(y) and pd.api.types.is_float_dtype(x):
                same = np.isclose(x.to_numpy(), y.to_numpy(), rtol=1e-6, atol=1e-12, equal_nan=True)
            else:
                same = (x == y) | (x.isna() & y.isna())
                same = same.to_numpy()
            bad = np.flatnonzero(~same)
            assert not len(bad), (
                f"{study}/{name}.{c}: {len(bad)} of {len(a)} values differ from the golden table, "
                f"e.g. row {bad[0]}: {x.iloc[bad[0]]!r} != golden {y.iloc[bad[0]]!r}"
            )
