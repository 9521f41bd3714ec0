# Datasets: download (on a login node / where the internet is), then one prepared file each.


rule download:
    output:
        directory("resources/datasets/{dataset}/raw"),
    log:
        "resources/datasets/{dataset}/logs/download.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        mirrors=config["data"]["mirrors"],
    script:
        "../../scripts/download.py"


rule prepare:
    input:
        unpack(prepare_input),
    output:
        "resources/datasets/{dataset}/data.pt",
    log:
        "resources/datasets/{dataset}/logs/prepare.log",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        split_seed=config["data"]["split_seed"],
        code=CODE["prepare"],
    script:
        "../../scripts/prepare.py"


rule labels:
    input:
        data=dataset_file,
    output:
        "results/{study}/labels/{noise}/seed{seed}.npz",
    log:
        "results/{study}/logs/labels/{noise}/seed{seed}.log",
    wildcard_constraints:
        study=_alternatives(set(config["studies"]) - set(LABEL_PACKED_STUDIES)),
    conda:
        "../../envs/corruptlab.yaml"
    params:
        spec=lambda w: noise_specs(study_runs(w))[w.noise],
        in_classes=study_in_classes,
        code=CODE["labels"],
    script:
        "../../scripts/labels.py"


# Studies that pack seeds (train.seeds_per_job) draw each pack's labels in one job too (one
# process start instead of one per seed); memorization studies share one data seed's labels.
for _seeds, _studies in PACKS.items():
    if set(_studies) & set(LABEL_PACKED_STUDIES):

        rule:
            name:
                pack_rule("labels", _seeds)
            input:
                data=dataset_file,
            output:
                **{
                    f"labels{s}": f"results/{{study}}/labels/{{noise}}/seed{s}.npz"
                    for s in _seeds
                },
            log:
                f"results/{{study}}/logs/labels/{{noise}}/{pack_name(_seeds)}.log",
            wildcard_constraints:
                study=_alternatives(set(_studies) & set(LABEL_PACKED_STUDIES)),
            conda:
                "../../envs/corruptlab.yaml"
            params:
                seeds=list(_seeds),
                spec=lambda w: noise_specs(study_runs(w))[w.noise],
                in_classes=study_in_classes,
                code=CODE["labels"],
            script:
                "../../scripts/labels_pack.py"


rule testset:
    input:
        data="resources/datasets/{dataset}/data.pt",
    output:
        "resources/datasets/{dataset}/testsets/{corruption}/s{severity}.pt",
    log:
        "resources/datasets/{dataset}/logs/testsets/{corruption}/s{severity}.log",
    wildcard_constraints:
        corruption=_alternatives(CORRUPTIONS),
        severity="[1-5]",
    conda:
        "../../envs/corruptlab.yaml"
    params:
        code=CODE["testset"],
    script:
        "../../scripts/testset.py"
