# Evaluate every run under each test condition (clean, corruption x severity) and adaptation
# method: one eval.parquet row per (condition, method), plus per-example predictions; in ood
# studies also score every run against each OOD set (ood.parquet). One job per pack of seeds, as
# for training: the same work per run and the same files, one process start per pack.


for _seeds, _studies in PACKS.items():

    rule:
        name:
            pack_rule("evaluate", _seeds)
        input:
            **trained_files(_seeds),
            data=dataset_file,
            testsets=testset_files,
            labels=lambda wildcards, seeds=_seeds: sorted(
                {
                    f
                    for s in pack_seeds(wildcards, seeds)
                    for f in eval_labels_files(wildcards, s)
                }
            ),
        output:
            **pack_files(_seeds, "eval.parquet"),
            **pack_files(_seeds, "predictions.parquet"),
        log:
            pack_log("evaluate", _seeds),
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        threads: config["threads"]
        resources:
            **run_resources(pack_size(_seeds)),
        params:
            seeds=lambda wildcards, seeds=_seeds: pack_seeds(wildcards, seeds),
            conditions=lambda wildcards, seeds=_seeds: [
                eval_conditions(wildcards, s) for s in pack_seeds(wildcards, seeds)
            ],
            methods=study_eval_methods,
            device=config["device"],
            code=CODE["evaluate"],
        script:
            "../../scripts/evaluate.py"

    produced_by(
        pack_rule("evaluate", _seeds),
        {"data": "prepare", "labels": labels_rule(_seeds), **trained_by(_seeds)},
    )
    if set(_studies) & set(OOD_STUDIES):

        rule:
            name:
                pack_rule("ood", _seeds)
            input:
                **trained_files(_seeds),
                data=dataset_file,
                sets=ood_files,
            output:
                **pack_files(_seeds, "ood.parquet"),
            log:
                pack_log("ood", _seeds),
            wildcard_constraints:
                study=_alternatives(set(_studies) & set(OOD_STUDIES)),
            conda:
                "../../envs/corruptlab.yaml"
            threads: config["threads"]
            resources:
                **run_resources(pack_size(_seeds)),
            params:
                seeds=lambda wildcards, seeds=_seeds: pack_seeds(wildcards, seeds),
                sets=ood_set_specs,
                scores=ood_scores,
                device=config["device"],
                code=CODE["ood"],
            script:
                "../../scripts/ood.py"

        produced_by(pack_rule("ood", _seeds), {"data": "prepare", **trained_by(_seeds)})


order_before_decades("evaluate", PACKS)
order_before_decades(
    "ood", {p: s for p, s in PACKS.items() if set(s) & set(OOD_STUDIES)}
)
