"""The study page (corruptlab.report.page): claims with their verdicts first and coloured,
figures with captions, tables as HTML with their parquet files linked; the captions the report
takes from the study kinds' docstrings."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from corruptlab import studies
from corruptlab.report.page import (
    Figure,
    Table,
    format_value,
    study_page,
    table_html,
    verdict_column,
)


class Cells(HTMLParser):
    """The header and body rows of every <table>, as text, and the classes of the cells."""

    def __init__(self):
        super().__init__()
        self.tables, self.classes, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
            self.classes.append(dict(attrs).get("class") or "")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None


def parse(text: str) -> Cells:
    cells = Cells()
    cells.feed(text)
    return cells


def claims(**columns) -> pd.DataFrame:
    base = {
        "study": ["s", "s", "s"],
        "claim": ["a falls", "a falls", "b beats c"],
        "subject": ["x", "y", "b - c"],
        "value": [-0.1, 0.02, 0.123456],
        "ci95_low": [-0.2, -0.05, float("nan")],
    }
    return pd.DataFrame({**base, **columns})


def test_the_verdict_comes_first_coloured_and_the_other_columns_follow_in_order():
    table = claims(
        verdict=["supported", "inconclusive", "contradicted"],
        paper_value=[None, "0.99", None],
        interval=["bootstrap", "bootstrap", "t"],
    )
    cells = parse(table_html(table, verdict=verdict_column(table)))
    header, *rows = cells.tables[0]
    # study is the same in every row: listed once beneath the table, not as a column
    assert header == ["verdict", "claim", "subject", "value", "ci95_low", "paper_value", "interval"]
    assert [r[0] for r in rows] == ["supported", "inconclusive", "contradicted"]
    assert rows[2][3] == "0.1235" and rows[2][4] == ""  # 4 significant digits; NaN empty
    verdict_classes = [c for c in cells.classes if c.startswith("verdict")]
    assert verdict_classes == ["verdict good", "verdict unsure", "verdict bad"]


def test_every_verdict_has_its_colour_and_a_table_without_verdicts_has_no_verdict_column():
    table = claims(verdict=["not applicable", "supported", "inconclusive"])
    cells = parse(table_html(table, verdict=verdict_column(table)))
    assert [c for c in cells.classes if c.startswith("verdict")] == [
        "verdict na",
        "verdict good",
        "verdict unsure",
    ]
    assert verdict_column(table.drop(columns="verdict")) is None


def test_a_verdict_the_same_in_every_row_stays_a_column_and_constant_columns_are_listed_once():
    table = claims(verdict=["supported"] * 3, detail=[""] * 3)
    text = table_html(table, verdict="verdict")
    assert parse(text).tables[0][0][0] == "verdict"
    assert re.search(r"Same in every row: <code>study</code> = s\.", text)
    assert "Empty in every row: <code>detail</code>." in text


def test_long_tables_show_their_first_rows_and_say_so():
    table = pd.DataFrame({"i": range(12), "x": [0.5] * 12})
    text = table_html(table, max_rows=5)
    assert len(parse(text).tables[0]) == 1 + 5
    assert "The first 5 of 12 rows" in text


def test_cells_are_escaped_and_formatted():
    assert format_value(None) == "" and format_value(float("nan")) == ""
    assert format_value([1, 2, 3]) == "[3 values]" and format_value(True) == "True"
    assert format_value(3) == "3" and format_value(1e-7) == "1e-07"
    text = table_html(pd.DataFrame({"c": ["<b>&"]}))
    assert "&lt;b&gt;&amp;" in text and "<b>" not in text


def test_the_page_shows_claims_then_figures_then_tables_with_their_files():
    png = b"\x89PNG fake bytes"
    parquet = b"PAR1 fake parquet PAR1"
    claims_table = Table(
        "claims", claims(verdict=["supported"] * 3), "", "tables/claims.parquet", parquet
    )
    summary = Table(
        "summary",
        pd.DataFrame({"metric": ["acc", "loss"], "mean": [0.9, 0.3]}),
        "Per configuration, ``mean`` over seeds.",
        "tables/summary.parquet",
        parquet,
    )
    page = study_page(
        "quick",
        "label_noise",
        claims_table.frame,
        [Figure("acc_vs_alpha", png, "Accuracy <versus> alpha.", "figures/acc_vs_alpha.png")],
        [summary],
        claims_link=claims_table,
        config_text="kind: label_noise\n",
        other_files=[("tables/runs.parquet", "one row per run")],
    )
    order = [page.index(s) for s in ('id="claims"', 'id="figures"', 'id="tables"')]
    assert order == sorted(order)
    assert "3 supported" in page
    # the figure, embedded, with its caption (escaped; ``code`` as <code>)
    image = re.search(r'<img src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(image) == png
    assert "Accuracy &lt;versus&gt; alpha." in page
    assert "Per configuration, <code>mean</code> over seeds." in page
    # each table's parquet file, embedded as a download named after it
    links = re.findall(
        r'href="data:application/vnd\.apache\.parquet;base64,([^"]+)" '
        r'download="(\w+\.parquet)"',
        page,
    )
    assert [name for _, name in links] == ["claims.parquet", "summary.parquet"]
    assert all(base64.b64decode(data) == parquet for data, _ in links)
    assert 'href="tables/runs.parquet"' in page
    tables = parse(page).tables
    assert tables[0][0][0] == "verdict" and tables[1][0] == ["metric", "mean"]


def test_a_study_without_claims_has_no_claims_section():
    page = study_page("s", "k", None, [], [])
    assert 'id="claims"' not in page and "<h1>s</h1>" in page


def _rst_messages(text: str) -> list[str]:
    from docutils.core import publish_parts

    body = publish_parts(text, writer="html", settings_overrides={"warning_stream": False})
    return re.findall(r"system-message", body["body"])


@pytest.mark.parametrize("kind", studies.BUILTIN)
def test_every_figure_and_table_has_a_caption_that_renders_as_rst(kind):
    assert _rst_messages("an unknown_ reference")  # what a broken caption would show
    studies.load()
    study_kind = studies.STUDIES.get(kind)
    for name, output in {**study_kind.tables, **study_kind.figures}.items():
        caption = output.caption
        assert caption and "\n" not in caption, (kind, name)
        assert not _rst_messages(caption), (kind, name, caption)


def test_a_value_repeated_in_the_grouping_column_is_greyed():
    table = claims(verdict=["supported", "supported", "inconclusive"])
    cells = parse(table_html(table, verdict="verdict"))
    # the claim column (the first after the verdict): "a falls" twice, then "b beats c"
    width = len(cells.tables[0][0])
    claim_classes = [cells.classes[width * row + 1] for row in (1, 2, 3)]
    assert claim_classes == ["", "repeat", ""]
