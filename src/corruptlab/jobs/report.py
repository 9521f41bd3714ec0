"""The table and figure rules' jobs: one of a study's derived tables or figures, computed by the
function its study kind declares (corruptlab.studies) from the tables (and files) it needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corruptlab import studies
from corruptlab.core.io import write_parquet


def _kind(study: dict, kinds: Sequence[str]) -> studies.StudyKind:
    return studies.load_kind(study["kind"], kinds)


def _read_tables(inputs: Mapping[str, str], names: Sequence[str]) -> dict:
    import pandas as pd

    return {name: pd.read_parquet(inputs[name]) for name in names}


def make_table(
    name: str, study: dict, inputs: Mapping[str, str], out_path: str, kinds: Sequence[str] = ()
):
    """Compute table ``name`` of a study (its config ``study``) from ``inputs`` (table name ->
    parquet file) and write it to ``out_path``; returns it."""
    output = _kind(study, kinds).output(name)
    table = output.fn(_read_tables(inputs, output.needs), study)
    write_parquet(table, out_path)
    return table


def make_figure(
    name: str,
    study: dict,
    inputs: Mapping[str, str],
    files: Mapping,
    png: str,
    pdf: str,
    kinds: Sequence[str] = (),
) -> None:
    """Draw figure ``name`` of a study from its tables (``inputs``) and, if it declares any,
    its other files (``files``: the dataset, labels files), as PNG and PDF."""
    from corruptlab.report.style import save_figure

    output = _kind(study, kinds).output(name)
    tables = _read_tables(inputs, output.needs)
    fig = output.fn(tables, study, dict(files)) if output.files else output.fn(tables)
    save_figure(fig, png, pdf)
