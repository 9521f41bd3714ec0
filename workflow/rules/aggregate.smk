# Aggregation: the tidy runs table, then the study's tables and figures from it, then the
# study's page. Everything marked report() goes into `snakemake --report report.html`: per
# study (a category), its page first, then its figures and its parquet tables (labels order
# them).
import mimetypes

# parquet files in the report download as what they are (not as text/plain)
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")


# Where one rule trains (evaluates, scores) every run, the per-run tables' inputs name it, so that
# Snakemake does not look up the producer of each run's files (20,000 in a 10,000-run sweep).


rule runs_table:
    input:
        runs=lambda w: run_files(w.study, "run.json"),
        evals=lambda w: run_files(w.study, "eval.parquet"),
    output:
        "results/{study}/tables/runs.parquet",
    log:
        "results/{study}/logs/tables/runs.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["runs_table"],
    script:
        "../../scripts/runs_table.py"


produced_by("runs_table", {"runs": sole_pack("train"), "evals": sole_pack("evaluate")})


rule ood_runs_table:
    input:
        runs=lambda w: run_files(w.study, "run.json"),
        evals=lambda w: run_files(w.study, "ood.parquet"),
    output:
        "results/{study}/tables/ood_runs.parquet",
    log:
        "results/{study}/logs/tables/ood_runs.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["ood_runs_table"],
    script:
        "../../scripts/ood_runs_table.py"


produced_by("ood_runs_table", {"runs": sole_pack("train"), "evals": sole_pack("ood")})


rule predictions_table:
    input:
        runs=lambda w: run_files(w.study, "run.json"),
        predictions=lambda w: run_files(w.study, "predictions.parquet"),
    output:
        "results/{study}/tables/predictions.parquet",
    log:
        "results/{study}/logs/tables/predictions.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["predictions_table"],
    script:
        "../../scripts/predictions_table.py"


produced_by(
    "predictions_table",
    {"runs": sole_pack("train"), "predictions": sole_pack("evaluate")},
)


rule histories_table:
    input:
        runs=lambda w: run_files(w.study, "run.json"),
        histories=lambda w: run_files(w.study, "history.parquet"),
    output:
        "results/{study}/tables/histories.parquet",
    log:
        "results/{study}/logs/tables/histories.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["histories_table"],
    script:
        "../../scripts/histories_table.py"


produced_by(
    "histories_table", {"runs": sole_pack("train"), "histories": sole_pack("train")}
)


rule table:
    input:
        unpack(needed_tables),
    output:
        report(
            "results/{study}/tables/{table}.parquet",
            caption="../report/table.rst",
            category="{study}",
            labels={"section": "3 table (parquet)", "name": "{table}"},
        ),
    log:
        "results/{study}/logs/tables/{table}.log",
    wildcard_constraints:
        table=rf"(?!(?:{'|'.join(PER_RUN_TABLES)})\b)[a-z_]+",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        study=lambda w: config["studies"][w.study],
        kinds=config["study_kinds"],
        code=kind_code("table"),
    script:
        "../../scripts/table.py"


rule figure:
    input:
        unpack(needed_tables),
    output:
        png=report(
            "results/{study}/figures/{figure}.png",
            caption="../report/figure.rst",
            category="{study}",
            labels={"section": "2 figure", "name": "{figure}"},
        ),
        pdf="results/{study}/figures/{figure}.pdf",
    log:
        "results/{study}/logs/figures/{figure}.log",
    wildcard_constraints:
        figure=r"[a-z0-9_]+",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        study=lambda w: config["studies"][w.study],
        files=output_files,
        kinds=config["study_kinds"],
        code=kind_code("figure"),
        # what it shows (its function's docstring), for the report's caption
        caption=lambda w: KIND[w.study].output(w.figure).caption,
    script:
        "../../scripts/figure.py"


rule study_page:
    input:
        unpack(page_inputs),
    output:
        report(
            "results/{study}/{study}.html",
            caption="../report/study_page.rst",
            category="{study}",
            labels={"section": "1 study page", "name": "claims, figures and tables"},
        ),
    log:
        "results/{study}/logs/study_page.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        study=lambda w: config["studies"][w.study],
        kinds=config["study_kinds"],
        code=kind_code("study_page"),
    script:
        "../../scripts/study_page.py"
