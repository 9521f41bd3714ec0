"""The ledger, ``docs/reproductions.md``: every reproduction's numbers beside its paper's, written
from the files ``collect`` keeps in ``docs/reproductions/<name>/`` and nothing else (the config
it ran, its provenance, its studies' claims tables and figures, and a hand-written
``notes.md`` on its gaps), so that the text cannot disagree with the tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from corruptlab.report.claims import REPORTED, VERDICTS

LEDGER = Path("docs/reproductions.md")
FOLDER = Path("docs/reproductions")

INTRO = """\
# Reproductions on real MNIST: the papers' numbers beside ours

Each section is one paper, reproduced at (or near) its own scale on the real MNIST by one config
file in `config/reproductions/`, run here on a 2-core CPU. What the config changes from the paper
and why is its header, quoted under "Setting". Our numbers are means over seeds with Student t
95% confidence intervals; a claim's verdict comes from its interval (config/README.md, "Claims,
verdicts and confidence intervals"). Where ours differs from the paper beyond its interval,
"What we found, and why ours differs" says why, or that we do not know yet; the tables and
figures of each study follow it.

This page is generated: `uv run python -m corruptlab.reproductions ledger` writes it from
`docs/reproductions/<name>/` (the tables, figures, config and provenance that
`uv run python -m corruptlab.reproductions run <name>` keeps), and a test regenerates it and
compares. Edit the configs, the notes (`docs/reproductions/<name>/notes.md`) or this generator,
never this page.
"""


def _header(config_text: str) -> tuple[str, str]:
    """A config's title (its first comment line, after ``Reproduction:``) and the rest of its
    leading comment."""
    lines = []
    for line in config_text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    text = "\n".join(lines).strip()
    title, _, rest = text.partition("\n")
    return title.removeprefix("Reproduction:").strip(), rest.strip()


def _setting(rest: str) -> str:
    """The config header after its title, with the ``Ledger:`` and run lines left out (the
    ledger gives the command itself) and its continuation lines joined."""
    out: list[str] = []
    for line in rest.splitlines():
        stripped = line.strip()
        if stripped.startswith(("Ledger:", "uv run ")) or not stripped:
            continue
        if stripped.startswith("Differs from the paper"):
            out += ["", f"*{stripped}*"]  # a paragraph of its own, before its list
        elif line.startswith("  ") and out:
            out[-1] += " " + stripped
        elif line.startswith("- ") or not out or out[-1].startswith("*Differs"):
            out.append(line)
        elif out[-1].startswith("- "):
            out.append(line)  # a paragraph after a list
        else:
            out[-1] += " " + stripped
    return "\n".join(out)


def fmt(x: float) -> str:
    """A claim's value: three significant decimals, or scientific notation for tiny ones."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.1e}"
    return f"{x:.3f}"


def _ours(row: pd.Series) -> str:
    value, low, high, n = row["value"], row["ci95_low"], row["ci95_high"], int(row["n"])
    if pd.isna(value):
        return "–"
    if pd.isna(low) or pd.isna(high):
        return f"{fmt(value)} (n = {n})"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}] (n = {n})"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _verdict_counts(claims: pd.DataFrame) -> str:
    counts = claims["verdict"].value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts.get(v, 0))


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def _beside_paper(claims: pd.DataFrame) -> str:
    """The rows with a paper number, one table per source; a number several claims check (an
    AUROC above 0.9, and above chance) once, with the first claim's verdict."""
    out = []
    once = claims.drop_duplicates(["subject", "value", "paper_value"])
    for source, rows in once.groupby("paper_source", sort=False):
        table = [
            [r["claim"], r["subject"], r["criterion"] or "–", _ours(r), fmt(r["paper_value"]),
             r["verdict"], r["paper_differs"] or "–"]
            for _, r in rows.iterrows()
        ]  # fmt: skip
        header = ["claim", "subject", "criterion", "ours [95% CI]", "paper", "verdict",
                  "how ours differs"]  # fmt: skip
        out += [f"From {source}:", "", _table(header, table), ""]
    return "\n".join(out).rstrip()


def _claims(claims: pd.DataFrame) -> str:
    rows = [
        [r["verdict"], r["claim"], r["subject"], _ours(r), r["criterion"] or "–"]
        for _, r in claims.iterrows()
    ]
    return _table(["verdict", "claim", "subject", "ours [95% CI]", "criterion"], rows)


GPU_ESTIMATES = "gpu_estimates.csv"  # written by benchmarks/full_studies.py --write


def _gpu_section(name: str, folder: Path) -> list[str]:
    """What the full configs of config/studies/ would add for this paper, and the hours they
    should take, as benchmarks/full_studies.py estimated them."""
    path = folder / GPU_ESTIMATES
    if not path.is_file():
        return []
    estimates = pd.read_csv(path)
    mine = estimates[estimates["paper"] == name]
    if mine.empty:
        return []
    rows = [
        [f"`{r['config']}` · `{r['study']}`", r["adds"], f"{r['runs']:,}",
         f"{r['train_examples']:,}", f"{r['cpu_hours']:g}", f"{r['gpu_hours']:g}"]
        for _, r in mine.iterrows()
    ]  # fmt: skip
    header = ["config · study", "what it adds", "runs", "training examples", "CPU hours",
              "GPU hours"]  # fmt: skip
    out = ["### What a GPU would add", "",
           "Estimated by `uv run python benchmarks/full_studies.py` (benchmarks/README.md):", "",
           _table(header, rows), ""]  # fmt: skip
    for assumption in mine["assumption"].unique():
        out += [f"Assumed: {assumption}.", ""]
    return out


def section(name: str, folder: Path = FOLDER) -> str:
    """The ledger's section on one reproduction."""
    here = folder / name
    provenance = json.loads((here / "provenance.json").read_text())
    title, rest = _header((here / "config.yaml").read_text())
    out = [f"## {title}", ""]
    out.append(
        _table(
            ["", ""],
            [
                ["command", f"`{provenance['command']}`"],
                ["the same, as Snakemake", f"`{provenance['snakemake_command']}`"],
                ["commit", f"`{provenance['commit'][:12]}`"],
                [
                    "wall time",
                    f"{_minutes(provenance.get('wall_seconds'))} on {provenance['cores']} cores "
                    f"({provenance['cpu']})"
                    + (
                        f", {_minutes(provenance['cpu_seconds'])} of CPU time"
                        if provenance.get("cpu_seconds")
                        else ""
                    )
                    + (
                        f", load {provenance['load_at_start']} at the start"
                        if provenance.get("load_at_start") is not None
                        else ""
                    ),
                ],
                ["collected", provenance["collected"]],
                *(
                    [
                        [
                            "last updated",
                            f"at `{provenance['last_update']['commit'][:12]}`, in "
                            f"{_minutes(provenance['last_update']['wall_seconds'])} (only the jobs "
                            "a change affected reran)",
                        ]
                    ]
                    if provenance.get("last_update")
                    else []
                ),
                *(
                    [
                        [
                            "timed at commit",
                            f"`{provenance['timed_commit'][:12]}` (a run from scratch)",
                        ]
                    ]
                    if provenance.get("timed_commit")
                    and provenance["timed_commit"] != provenance["commit"]
                    else []
                ),
                ["config", f"[{name}.yaml](reproductions/{name}/config.yaml)"],
            ],
        )
    )
    out += ["", "**Setting** (the config's header):", "", _setting(rest), ""]
    notes = here / "notes.md"
    out += ["### What we found, and why ours differs", ""]
    out.append(fill(notes.read_text(), here).strip() if notes.is_file() else "Not yet examined.")
    out.append("")
    for study in provenance["studies"]:
        claims = pd.read_parquet(here / study / "tables" / "claims.parquet")
        out.append(f"### Study `{study}`: {_verdict_counts(claims)}")
        out.append("")
        paper = claims[claims["paper_value"].notna()]
        if len(paper):
            out += [_beside_paper(paper), ""]
        shown = paper.drop_duplicates(["subject", "value", "paper_value"]).index
        others = claims.drop(shown)
        others = others[others["verdict"] != REPORTED]
        if len(others):
            out += ["Claims:", "", _claims(others), ""]
        reported = claims.drop(shown)
        reported = reported[reported["verdict"] == REPORTED]
        if len(reported):
            out += ["Reported without a claimed direction:", "", _claims(reported), ""]
        figures = sorted((here / study / "figures").glob("*.png"))
        for figure in figures:
            out += [
                f"![{study}: {figure.stem}](reproductions/{name}/{study}/figures/{figure.name})",
                "",
            ]
    out += _gpu_section(name, folder)
    out.append("")
    return "\n".join(out)


PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_]+)\|([^}|]+)(?:\|([^}|]+))?\}\}")


class LedgerError(Exception):
    """A note that names a number the tables do not have."""


def fill(notes: str, here: Path) -> str:
    """A note with each ``{{<study>|<subject>}}`` replaced by that subject's value and CI from
    the study's claims table (its first row of that subject; ``{{<study>|<subject>|<claim>}}``:
    its first row whose claim starts so), so that a number a note gives is the table's own."""

    def value(match: re.Match) -> str:
        study, subject = match.group(1), match.group(2).strip()
        path = here / study / "tables" / "claims.parquet"
        if not path.is_file():
            raise LedgerError(f"{here / 'notes.md'}: no study {study!r} in {here}")
        claims = pd.read_parquet(path)
        rows = claims[claims["subject"] == subject]
        if match.group(3):
            rows = rows[rows["claim"].str.startswith(match.group(3).strip())]
        if rows.empty:
            claim = f" with a claim {match.group(3).strip()!r}" if match.group(3) else ""
            raise LedgerError(
                f"{here / 'notes.md'}: study {study!r} has no subject {subject!r}{claim}"
            )
        r = rows.iloc[0]
        if pd.isna(r["ci95_low"]):
            return fmt(r["value"])
        return f"{fmt(r['value'])} [{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]"

    return PLACEHOLDER.sub(value, notes)


def summary_row(name: str, folder: Path = FOLDER) -> list[str]:
    here = folder / name
    provenance = json.loads((here / "provenance.json").read_text())
    title, _ = _header((here / "config.yaml").read_text())
    claims = pd.read_parquet(here / name / "tables" / "claims.parquet")
    anchor = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")  # GitHub's
    paper = len(claims[claims["paper_value"].notna()].drop_duplicates(["subject", "value"]))
    return [
        f"[{title.split(',')[0]}](#{anchor})",
        _verdict_counts(claims),
        str(paper),
        _minutes(provenance.get("wall_seconds")),
        f"`{provenance['commit'][:7]}`",
    ]


def render(folder: Path = FOLDER) -> str:
    names = sorted(p.parent.name for p in folder.glob("*/provenance.json"))
    out = [INTRO]
    if names:
        out += [
            _table(
                [
                    "paper",
                    "claims (main study)",
                    "numbers beside the paper's",
                    "wall time",
                    "commit",
                ],
                [summary_row(n, folder) for n in names],
            ),
            "",
        ]
    configs = folder.parent.parent / "config" / "reproductions"
    pending = sorted({p.stem for p in configs.glob("*.yaml")} - set(names))
    if pending:
        out += [
            "Not run here yet (their configs are in `config/reproductions/`): "
            + ", ".join(f"`{n}`" for n in pending)
            + ".",
            "",
        ]
    out += [section(n, folder) for n in names]
    return "\n".join(out).rstrip() + "\n"


def write_ledger(path: Path = LEDGER, folder: Path = FOLDER) -> Path:
    from corruptlab.core.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(render(folder))
    return path
