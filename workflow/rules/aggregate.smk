# Aggregation: the tidy runs table, then the study's tables and figures from it.


rule runs_table:
    input:
        runs=lambda w: run_files(w.study, "run.json"),
        evals=lambda w: run_files(w.study, "eval.parquet"),
    output:
        "results/{study}/tables/runs.parquet",
    params:
        code=CODE["tables"],
    log:
        "results/{study}/logs/tables/runs.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/runs_table.py"


def needed_tables(wildcards):
    """The study's tables that a table or figure is computed from (declared by its kind)."""
    kind = STUDIES.get(config["studies"][wildcards.study]["kind"])
    target = wildcards.get("table") or wildcards.get("figure")
    return {t: f"results/{wildcards.study}/tables/{t}.parquet" for t in kind.needs(target)}


rule table:
    input:
        unpack(needed_tables),
    output:
        "results/{study}/tables/{table}.parquet",
    wildcard_constraints:
        table=r"(?!runs\b)[a-z_]+",
    params:
        study=lambda w: config["studies"][w.study],
        code=CODE["tables"],
    log:
        "results/{study}/logs/tables/{table}.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/table.py"


rule figure:
    input:
        unpack(needed_tables),
    output:
        png="results/{study}/figures/{figure}.png",
        pdf="results/{study}/figures/{figure}.pdf",
    wildcard_constraints:
        figure=r"[a-z0-9_]+",
    params:
        code=CODE["figures"],
    log:
        "results/{study}/logs/figures/{figure}.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/figure.py"
