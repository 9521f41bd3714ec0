# One training job per run: model x noise x optimizer x lr x batch size x seed.


rule train:
    input:
        data=dataset_file,
        labels="results/{study}/labels/{noise}/seed{seed}.npz",
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.parquet",
        run=f"{RUN_DIR}/run.json",
    log:
        f"{RUN_DIR}/train.log",
    benchmark:
        f"{RUN_DIR}/train.benchmark.tsv"
    conda:
        "../../envs/corruptlab.yaml"
    threads: config["threads"]
    resources:
        **RUN_RESOURCES,
    params:
        run=run_of,
        code=CODE["train"],
    script:
        "../../scripts/train.py"
