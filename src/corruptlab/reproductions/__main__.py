"""``python -m corruptlab.reproductions``: run a reproduction, collect it, write the ledger."""

from __future__ import annotations

import argparse
import sys

from corruptlab.reproductions.ledger import LedgerError
from corruptlab.reproductions.run import ReproductionError, collect, names, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corruptlab.reproductions", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p_run = sub.add_parser("run", help="run one reproduction (or several) and collect it")
    p_run.add_argument("name", nargs="+", help=f"one of: {', '.join(names())}")
    p_run.add_argument("--snakemake", default="", help="extra Snakemake arguments, quoted")
    p_col = sub.add_parser("collect", help="collect a finished reproduction without running it")
    p_col.add_argument("name", nargs="+")
    sub.add_parser("ledger", help="write docs/reproductions.md from docs/reproductions/")
    sub.add_parser("list", help="list the reproductions")
    args = parser.parse_args(argv)
    try:
        if args.what == "list":
            print("\n".join(names()))
        elif args.what == "ledger":
            from corruptlab.reproductions.ledger import write_ledger

            print(write_ledger())
        else:
            for name in args.name:
                seconds = None
                if args.what == "run":
                    seconds = run(name, args.snakemake.split())
                print(collect(name, seconds), file=sys.stderr)
    except (ReproductionError, LedgerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
