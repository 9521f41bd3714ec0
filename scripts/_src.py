"""Imported first by every script: puts the repository's src/ on sys.path, so that the scripts
find corruptlab also where it is not installed (a conda or container environment). Snakemake
adds this directory to the script's sys.path."""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
