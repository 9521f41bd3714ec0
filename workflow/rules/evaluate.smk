# Evaluate every run under each test condition (clean, corruption x severity) and adaptation
# method: one eval.parquet row per (condition, method), plus per-example predictions; in ood
# studies also score every run against each OOD set (ood.parquet).


rule evaluate:
    input:
        data=dataset_file,
        model=f"{RUN_DIR}/model.pt",
        run=f"{RUN_DIR}/run.json",
        testsets=testset_files,
        labels=eval_labels_files,
    output:
        metrics=f"{RUN_DIR}/eval.parquet",
        predictions=f"{RUN_DIR}/predictions.parquet",
    log:
        f"{RUN_DIR}/evaluate.log",
    conda:
        "../../envs/corruptlab.yaml"
    threads: config["threads"]
    resources:
        **RUN_RESOURCES,
    params:
        conditions=eval_conditions,
        methods=study_eval_methods,
        device=config["device"],
        code=CODE["evaluate"],
    script:
        "../../scripts/evaluate.py"


rule ood:
    input:
        data=dataset_file,
        model=f"{RUN_DIR}/model.pt",
        run=f"{RUN_DIR}/run.json",
        sets=ood_files,
    output:
        f"{RUN_DIR}/ood.parquet",
    log:
        f"{RUN_DIR}/ood.log",
    conda:
        "../../envs/corruptlab.yaml"
    threads: config["threads"]
    resources:
        **RUN_RESOURCES,
    params:
        sets=ood_set_specs,
        scores=lambda w: config["studies"][w.study]["ood"]["scores"],
        device=config["device"],
        code=CODE["ood"],
    script:
        "../../scripts/ood.py"
