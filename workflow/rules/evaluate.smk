# Evaluate every run under each test condition: one eval.parquet row per condition, plus
# per-example predictions for later studies.


rule evaluate:
    input:
        data=dataset_file,
        model=f"{RUN_DIR}/model.pt",
        run=f"{RUN_DIR}/run.json",
    output:
        metrics=f"{RUN_DIR}/eval.parquet",
        predictions=f"{RUN_DIR}/predictions.parquet",
    log:
        f"{RUN_DIR}/evaluate.log",
    conda:
        "../../envs/corruptlab.yaml"
    threads: config["threads"]
    params:
        conditions=["clean"],
        device=config["device"],
        code=CODE["evaluate"],
    script:
        "../../scripts/evaluate.py"
