# One training job per run: model x noise x optimizer x lr x batch size x seed.


rule train:
    input:
        data=dataset_file,
        labels=labels_file,
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.parquet",
        run=f"{RUN_DIR}/run.json",
    log:
        f"{RUN_DIR}/train.log",
    benchmark:
        f"{RUN_DIR}/train.benchmark.tsv"
    wildcard_constraints:
        study=_alternatives(UNPACKED_STUDIES),
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


# Studies with train.seeds_per_job: K > 1 train K seeds of a configuration in one job (one after
# another, or together with train.packing: vmap), which writes each seed's usual outputs. An
# output's path must follow from the job's wildcards, and a pack's seeds are not wildcards: so
# there is one rule per pack of seeds (chunks of a study's sorted seeds; few, shared across
# studies). The job may run for the study's runtime per run times its seeds.
for _seeds, _studies in PACKS.items():

    rule:
        name:
            pack_rule("train", _seeds)
        input:
            data=dataset_file,
            labels=lambda wildcards, seeds=_seeds: [
                labels_file(wildcards, s) for s in seeds
            ],
        output:
            **pack_files(_seeds, "model.pt"),
            **pack_files(_seeds, "history.parquet"),
            **pack_files(_seeds, "run.json"),
        log:
            f"{PACK_BASE}/train-{pack_name(_seeds)}.log",
        benchmark:
            f"{PACK_BASE}/train-{pack_name(_seeds)}.benchmark.tsv"
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        threads: config["threads"]
        resources:
            **run_resources(len(_seeds)),
        params:
            runs=lambda wildcards, seeds=_seeds: [run_of(wildcards, s) for s in seeds],
            packing=lambda wildcards: config["studies"][wildcards.study]["train"][
                "packing"
            ],
            code=CODE["train_pack"],
        script:
            "../../scripts/train_pack.py"
