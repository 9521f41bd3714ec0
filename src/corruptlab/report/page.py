"""A study's page: one self-contained HTML file a person opens in a browser, the claims table
with its verdicts first, then each figure with its caption, then the study's tables as HTML
tables, each with a link to its parquet file. Pure: frames, PNG bytes and text in, HTML out
(the page rule's job, ``corruptlab.jobs.page``, reads the files and writes the page).

Generic over the tables: the claims table's verdict column (``verdict``, or ``result`` where a
table has no ``verdict``) comes first and is coloured per value; every other column follows in
the table's own order. A column with one value in every row is not repeated down the table but
listed once beneath it ("same in every row"), which keeps the provenance columns out of the way.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from corruptlab.report.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    REPORTED,
    SUPPORTED,
)
from corruptlab.report.tables import PROVENANCE_COLUMNS

# the claims table's verdict column (corruptlab.report.claims)
VERDICT_COLUMNS = ("verdict",)
# verdict value -> CSS class (its colour); values not listed get the neutral "other"
VERDICT_CLASSES = {
    SUPPORTED: "good",
    CONTRADICTED: "bad",
    INCONCLUSIVE: "unsure",
    NOT_APPLICABLE: "na",
    REPORTED: "info",
}
MAX_ROWS = 500  # rows shown of a table; the parquet file has them all
MAX_EMBEDDED_BYTES = 20_000_000  # larger parquet files are linked by path, not embedded
PARQUET_MIME = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    caption: str  # plain text (``code`` spans allowed, as in docstrings)
    path: str  # where the PNG is, relative to the page


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame
    caption: str
    path: str  # the parquet file, relative to the page
    parquet: bytes | None = None  # embedded as a download link when given (and not too large)


def verdict_column(table: pd.DataFrame) -> str | None:
    """The column holding a claims table's verdicts (``verdict``), or None."""
    return next((c for c in VERDICT_COLUMNS if c in table.columns), None)


def _text(caption: str) -> str:
    """Escaped caption text; ``code`` (double backticks, as in docstrings) becomes <code>."""
    parts = re.split(r"``(.+?)``", caption)
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)
    )


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def format_value(value) -> str:
    """A cell as text: floats to 4 significant digits, missing values empty, arrays and lists
    by their length."""
    if isinstance(value, list | tuple | np.ndarray):
        return f"[{len(value)} values]"
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def _constant_columns(table: pd.DataFrame, keep: Sequence[str]) -> list[str]:
    """Columns with one value (as shown) in every row, of a table with at least two rows."""
    if len(table) < 2:
        return []
    return [c for c in table.columns if c not in keep and table[c].map(format_value).nunique() == 1]


def _verdict_cell(value) -> str:
    text = format_value(value)
    cls = VERDICT_CLASSES.get(text.lower(), "other")
    return f'<td class="verdict {cls}"><span>{html.escape(text)}</span></td>'


def table_html(table: pd.DataFrame, verdict: str | None = None, max_rows: int = MAX_ROWS) -> str:
    """``table`` as an HTML table: ``verdict`` (a column name) first and coloured per value,
    the other columns in order (the provenance columns last); columns with one value
    throughout listed beneath it, once; at most ``max_rows`` rows (the rest counted)."""
    keep = [verdict] if verdict else []
    constant = _constant_columns(table, keep)
    rest = [c for c in table.columns if c not in constant and c not in keep]
    columns = keep + sorted(rest, key=lambda c: c in PROVENANCE_COLUMNS)
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(table[c])}
    head = "".join(
        f'<th class="{"num" if c in numeric else ""}">{html.escape(str(c))}</th>' for c in columns
    )
    # the first column after the verdict groups the rows: a value repeated from the row
    # above is greyed, so that each group's start stands out
    group = next((c for c in columns if c != verdict), None)
    rows, previous = [], None
    for _, row in table.head(max_rows).iterrows():
        cells = []
        for c in columns:
            text = format_value(row[c])
            if c == verdict:
                cells.append(_verdict_cell(row[c]))
                continue
            classes = ["num"] if c in numeric else []
            if c == group:
                if text == previous:
                    classes.append("repeat")
                previous = text
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    parts = [
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    ]
    if len(table) > max_rows:
        parts.append(
            f'<p class="note">The first {max_rows} of {len(table)} rows; '
            "the parquet file has them all.</p>"
        )
    empty = [c for c in constant if format_value(table[c].iloc[0]) == ""]
    same = "; ".join(
        f"<code>{html.escape(str(c))}</code> = {html.escape(format_value(table[c].iloc[0]))}"
        for c in constant
        if c not in empty
    )
    if same:
        parts.append(f'<p class="note">Same in every row: {same}.</p>')
    if empty:
        names = ", ".join(f"<code>{html.escape(str(c))}</code>" for c in empty)
        parts.append(f'<p class="note">Empty in every row: {names}.</p>')
    return "\n".join(parts)


def _parquet_link(table: Table) -> str:
    """A link to the table's parquet file: its bytes embedded as a download (the page then
    works wherever it is opened, also inside Snakemake's report), else its relative path."""
    name = table.path.rsplit("/", 1)[-1]
    if table.parquet is not None and len(table.parquet) <= MAX_EMBEDDED_BYTES:
        data = base64.b64encode(table.parquet).decode()
        href = f"data:{PARQUET_MIME};base64,{data}"
        return (
            f'<a class="parquet" href="{href}" download="{html.escape(name)}">'
            f"{html.escape(name)}</a>"
        )
    return f'<a class="parquet" href="{html.escape(table.path)}">{html.escape(name)}</a>'


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims rows have each verdict, the most frequent first."""
    column = verdict_column(claims)
    if column is None:
        return {}
    return {str(k): int(v) for k, v in claims[column].map(format_value).value_counts().items()}


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1em 2em 3em;
       max-width: 1200px; color: #1e293b; background: #fff; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #cbd5e1; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1em; margin: 1.5em 0 0.3em; }
p.lead, p.note { color: #475569; font-size: 0.9em; }
p.note { margin: 0.3em 0; }
nav a { margin-right: 1em; }
.scroll { overflow: auto; max-height: 75vh; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.3em 0; }
th, td { border: 1px solid #e2e8f0; padding: 0.25em 0.5em; text-align: left;
         vertical-align: top; max-width: 32em; }
th { background: #f1f5f9; position: sticky; top: 0; }
td.repeat { color: #94a3b8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f8fafc; }
td.verdict { font-weight: 600; white-space: nowrap; }
td.verdict span { padding: 0.1em 0.5em; border-radius: 0.8em; }
td.good span { background: #dcfce7; color: #166534; }
td.bad span { background: #fee2e2; color: #991b1b; }
td.unsure span { background: #fef9c3; color: #854d0e; }
td.na span, td.other span { background: #e2e8f0; color: #334155; }
td.info span { background: #dbeafe; color: #1e40af; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; max-height: 85vh; border: 1px solid #e2e8f0; }
figcaption { font-size: 0.9em; color: #334155; max-width: 60em; }
code { font-size: 0.95em; background: #f1f5f9; padding: 0 0.2em; }
details pre { font-size: 0.8em; background: #f8fafc; padding: 0.5em; overflow-x: auto; }
"""


def study_page(
    study: str,
    kind: str,
    claims: pd.DataFrame | None,
    figures: Sequence[Figure],
    tables: Sequence[Table],
    claims_link: Table | None = None,
    config_text: str = "",
    other_files: Sequence[tuple[str, str]] = (),
) -> str:
    """The page of study ``study`` (of kind ``kind``): its claims (if it has a claims table),
    figures and tables, in that order. ``claims_link`` gives the claims table's parquet file;
    ``config_text`` (the study's config as YAML) is shown folded; ``other_files`` are (path,
    what it holds) of files linked by path only (the per-run tables)."""
    title = f"{study}: claims, figures and tables"
    sections = []
    nav = []
    if claims is not None:
        column = verdict_column(claims)
        counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(claims).items())
        link = f" Parquet file: {_parquet_link(claims_link)}." if claims_link else ""
        sections.append(
            '<section id="claims"><h2>Claims</h2>'
            f"<p class=\"lead\">The paper's claims checked on this run's numbers "
            f"({len(claims)} rows{': ' + counts if counts else ''}).{link}</p>"
            f"{table_html(claims, verdict=column)}</section>"
        )
        nav.append('<a href="#claims">Claims</a>')
    if figures:
        items = []
        for fig in figures:
            data = base64.b64encode(fig.png).decode()
            items.append(
                f'<figure id="figure-{html.escape(fig.name)}"><h3>{html.escape(fig.name)}</h3>'
                f'<img src="data:image/png;base64,{data}" alt="figure {html.escape(fig.name)}">'
                f"<figcaption>{_text(fig.caption)} <code>{html.escape(fig.path)}</code>"
                "</figcaption></figure>"
            )
        sections.append(f'<section id="figures"><h2>Figures</h2>{"".join(items)}</section>')
        nav.append('<a href="#figures">Figures</a>')
    if tables or other_files:
        items = []
        for table in tables:
            items.append(
                f'<div class="table" id="table-{html.escape(table.name)}">'
                f"<h3>{html.escape(table.name)}</h3>"
                f'<p class="note">{_text(table.caption)} {len(table.frame)} rows. '
                f"Parquet file: {_parquet_link(table)} (<code>{html.escape(table.path)}</code>)."
                f"</p>{table_html(table.frame)}</div>"
            )
        if other_files:
            links = "".join(
                f'<li><a href="{html.escape(path)}">{html.escape(path)}</a>: {_text(what)}</li>'
                for path, what in other_files
            )
            items.append(
                "<h3>Per-run tables</h3>"
                '<p class="note">Not shown here; beside this page when it is opened from the '
                f"study's results directory:</p><ul>{links}</ul>"
            )
        sections.append(f'<section id="tables"><h2>Tables</h2>{"".join(items)}</section>')
        nav.append('<a href="#tables">Tables</a>')
    if config_text:
        sections.append(
            '<section id="config"><h2>Configuration</h2><details><summary>The study\'s config'
            f"</summary><pre>{html.escape(config_text)}</pre></details></section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(study)}</h1>"
        f'<p class="lead">Study kind <code>{html.escape(kind)}</code>. corruptlab\'s results of '
        "this study: the claims with their verdicts, the figures, and the tables they are "
        f"drawn from.</p><nav>{''.join(nav)}</nav>"
        f"{''.join(sections)}</body></html>\n"
    )
