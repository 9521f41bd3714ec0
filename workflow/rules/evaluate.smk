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
    wildcard_constraints:
        study=_alternatives(UNPACKED_STUDIES),
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
    wildcard_constraints:
        study=_alternatives(UNPACKED_STUDIES),
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


# Studies that train packs of seeds (train.seeds_per_job) evaluate each pack in one job too:
# the same work per run and the same files, but one process start (about 3 s of imports on a
# CPU) per pack instead of per run. One rule per pack of seeds, as for training.
for _seeds, _studies in PACKS.items():

    rule:
        name:
            pack_rule("evaluate", _seeds)
        input:
            **pack_files(_seeds, "model.pt"),
            **pack_files(_seeds, "run.json"),
            data=dataset_file,
            testsets=testset_files,
            labels=lambda wildcards, seeds=_seeds: sorted(
                {f for s in seeds for f in eval_labels_files(wildcards, s)}
            ),
        output:
            **pack_files(_seeds, "eval.parquet"),
            **pack_files(_seeds, "predictions.parquet"),
        log:
            f"{PACK_BASE}/evaluate-{pack_name(_seeds)}.log",
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        threads: config["threads"]
        resources:
            **run_resources(len(_seeds)),
        params:
            seeds=list(_seeds),
            conditions=lambda wildcards, seeds=_seeds: [
                eval_conditions(wildcards, s) for s in seeds
            ],
            methods=study_eval_methods,
            device=config["device"],
            code=CODE["evaluate"],
        script:
            "../../scripts/evaluate_pack.py"

    if set(_studies) & set(OOD_STUDIES):

        rule:
            name:
                pack_rule("ood", _seeds)
            input:
                **pack_files(_seeds, "model.pt"),
                **pack_files(_seeds, "run.json"),
                data=dataset_file,
                sets=ood_files,
            output:
                **pack_files(_seeds, "ood.parquet"),
            log:
                f"{PACK_BASE}/ood-{pack_name(_seeds)}.log",
            wildcard_constraints:
                study=_alternatives(set(_studies) & set(OOD_STUDIES)),
            conda:
                "../../envs/corruptlab.yaml"
            threads: config["threads"]
            resources:
                **run_resources(len(_seeds)),
            params:
                seeds=list(_seeds),
                sets=ood_set_specs,
                scores=lambda w: config["studies"][w.study]["ood"]["scores"],
                device=config["device"],
                code=CODE["ood"],
            script:
                "../../scripts/ood_pack.py"
