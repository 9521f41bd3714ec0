# Training: one job per pack of a configuration's seeds (a single run is a pack of one); each
# run of the pack writes its usual outputs in its own run directory.


for _seeds, _studies in PACKS.items():

    rule:
        name:
            pack_rule("train", _seeds)
        input:
            data=dataset_file,
            labels=lambda wildcards, seeds=_seeds: [
                labels_file(wildcards, s) for s in pack_seeds(wildcards, seeds)
            ],
            upstream=lambda wildcards, seeds=_seeds: run_inputs(wildcards, seeds),
        output:
            **pack_files(_seeds, "model.pt"),
            **pack_files(_seeds, "history.parquet"),
            **pack_files(_seeds, "run.json"),
        log:
            pack_log("train", _seeds),
        benchmark:
            pack_log("train", _seeds, "benchmark.tsv")
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        threads: config["threads"]
        resources:
            **run_resources(pack_size(_seeds)),
        params:
            runs=lambda wildcards, seeds=_seeds: [
                run_of(wildcards, s) for s in pack_seeds(wildcards, seeds)
            ],
            packing=lambda wildcards, seeds=_seeds: (
                None
                if seeds == ONE
                else config["studies"][wildcards.study]["train"]["packing"]
            ),
            code=CODE["train"],
        script:
            "../../scripts/train.py"

    produced_by(
        pack_rule("train", _seeds),
        {"data": "prepare", "labels": labels_rule(_seeds)},
    )


order_before_decades("train", PACKS)


# A run's logits on the training split (train_logits.npy), for the studies whose kind trains
# students on soft targets (corruptlab.studies.StudyKind.soft_targets): made once per teacher run,
# when a student names it in its inputs (corruptlab.core.runs), and read by every such student.
# One job per pack of seeds, as for evaluation.
SOFT_TARGET_STUDIES = [s for s in config["studies"] if KIND[s].soft_targets]
SOFT_TARGET_PACKS = {
    p: sorted(set(s) & set(SOFT_TARGET_STUDIES))
    for p, s in PACKS.items()
    if set(s) & set(SOFT_TARGET_STUDIES)
}
for _seeds, _studies in SOFT_TARGET_PACKS.items():

    rule:
        name:
            pack_rule("soft_targets", _seeds)
        input:
            **trained_files(_seeds),
            data=dataset_file,
        output:
            **pack_files(_seeds, runs.SOFT_TARGETS),
        log:
            pack_log("soft_targets", _seeds),
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        threads: config["threads"]
        resources:
            **run_resources(pack_size(_seeds)),
        params:
            device=config["device"],
            code=CODE["soft_targets"],
        script:
            "../../scripts/soft_targets.py"

    produced_by(
        pack_rule("soft_targets", _seeds), {"data": "prepare", **trained_by(_seeds)}
    )


order_before_decades("soft_targets", SOFT_TARGET_PACKS)
