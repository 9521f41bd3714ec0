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


# The noisy labels of a noise setting, one file per seed: a job per pack of seeds (the studies'
# packs; a pack of one for studies whose runs share one data seed's labels).
for _seeds, _studies in LABEL_PACKS.items():

    rule:
        name:
            pack_rule("labels", _seeds)
        input:
            data=dataset_file,
        output:
            **{
                f"labels_{i}": runs.LABELS.replace("{seed}", s)
                for i, s in enumerate(pack_spellings(_seeds))
            },
        log:
            f"results/{{study}}/logs/labels/{{noise}}/{pack_name(_seeds)}.log",
        wildcard_constraints:
            study=_alternatives(_studies),
        conda:
            "../../envs/corruptlab.yaml"
        params:
            seeds=lambda wildcards, seeds=_seeds: pack_seeds(wildcards, seeds),
            spec=lambda w: noise_specs(study_runs(w))[w.noise],
            in_classes=study_in_classes,
            code=CODE["labels"],
        script:
            "../../scripts/labels.py"

    produced_by(pack_rule("labels", _seeds), {"data": "prepare"})


order_before_decades("labels", LABEL_PACKS)


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
