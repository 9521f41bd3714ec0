# Evaluate every run under each test condition (clean, corruption x severity) and adaptation
# method: one eval.parquet row per (condition, method), plus per-example predictions.


rule evaluate:
    input:
        data=dataset_file,
        model=f"{RUN_DIR}/model.pt",
        run=f"{RUN_DIR}/run.json",
        testsets=testset_files,
    output:
        metrics=f"{RUN_DIR}/eval.parquet",
        predictions=f"{RUN_DIR}/predictions.parquet",
    log:
        f"{RUN_DIR}/evaluate.log",
    conda:
        "../../envs/corruptlab.yaml"
    threads: config["threads"]
    params:
        conditions=eval_conditions,
        methods=study_eval_methods,
        device=config["device"],
        code=CODE["evaluate"],
    script:
        "../../scripts/evaluate.py"
