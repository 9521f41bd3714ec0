# Aggregation: the tidy runs table, then the study's tables and figures from it.


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


rule table:
    input:
        unpack(needed_tables),
    output:
        report(
            "results/{study}/tables/{table}.parquet",
            caption="../report/table.rst",
            category="{study}",
            subcategory="tables",
        ),
    log:
        "results/{study}/logs/tables/{table}.log",
    wildcard_constraints:
        table=r"(?!(?:runs|predictions|ood_runs|histories)\b)[a-z_]+",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        study=lambda w: config["studies"][w.study],
        code=CODE["table"],
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
            subcategory="figures",
        ),
        pdf="results/{study}/figures/{figure}.pdf",
    log:
        "results/{study}/logs/figures/{figure}.log",
    wildcard_constraints:
        figure=r"[a-z0-9_]+",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["figure"],
    script:
        "../../scripts/figure.py"


rule gallery:
    input:
        data=dataset_file,
    output:
        png="results/{study}/figures/corruption_gallery.png",
        pdf="results/{study}/figures/corruption_gallery.pdf",
    log:
        "results/{study}/logs/figures/corruption_gallery.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["gallery"],
    script:
        "../../scripts/gallery.py"


rule examples_grid:
    input:
        p_correct="results/{study}/tables/p_correct.parquet",
        data=dataset_file,
        labels=memorization_labels_files,
    output:
        png="results/{study}/figures/examples_grid.png",
        pdf="results/{study}/figures/examples_grid.pdf",
    log:
        "results/{study}/logs/figures/examples_grid.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        variants=memorization_variants,
        examples=lambda w: config["studies"][w.study]["memorization"]["examples"],
        code=CODE["examples_grid"],
    script:
        "../../scripts/examples_grid.py"
