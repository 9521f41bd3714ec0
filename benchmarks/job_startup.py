"""Job start-up and exit: what a rule's script process costs before and after its work.

Every Snakemake job with a ``script:`` is a fresh Python process that imports what its step
needs and exits. This times such a process doing nothing but the imports of a kind of job,
ending normally (the interpreter's teardown: freeing every module, the native libraries'
destructors) and ending with ``corruptlab.core.logs.end_job()`` (what the scripts do), alternating,
median of the repeats; and a bare interpreter for reference.

    uv run python benchmarks/job_startup.py            # ~1 min
    uv run python benchmarks/job_startup.py --quick    # one repeat (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys

import _common

# kind of job -> the imports its script makes (the heaviest modules of the step)
JOBS = {
    "train / evaluate / ood": "import torch, pandas, pyarrow.parquet, corruptlab.eval.evaluation, "
    "corruptlab.train.training, corruptlab.jobs.train",
    "table": "import pandas, pyarrow.parquet, corruptlab.report.tables, "
    "corruptlab.studies.label_noise",
    "figure": "import pandas, corruptlab.studies.label_noise, matplotlib.pyplot",
    "bare interpreter": "pass",
}
END_JOB = "from corruptlab.core.logs import end_job; end_job()"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="one repeat (a smoke test)")
    return p.parse_args(argv)


def wall(code: str, env: dict) -> float:
    return _common.run([sys.executable, "-c", code], env=env)[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.repeats = 1
    _common.print_machine("job start-up: imports, and exit with and without teardown")
    env = _common.workflow_env(_common.REPO)
    wall("import torch", env)  # warm the page cache
    rows = []
    for kind, imports in JOBS.items():
        normal, fast = [], []
        for _ in range(args.repeats):
            normal.append(wall(imports, env))
            fast.append(wall(f"{imports}\n{END_JOB}", env))
        n, f = statistics.median(normal), statistics.median(fast)
        rows.append((kind, f"{n:.2f}", f"{f:.2f}", f"{n - f:+.2f}"))
    _common.print_table(
        ["job", "imports + normal exit (s)", "imports + end_job() (s)", "saved per job (s)"],
        rows,
        title=f"a job's process doing nothing but its imports (median of {args.repeats})",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
