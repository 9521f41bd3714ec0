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
    conda:
        "../../envs/corruptlab.yaml"
    params:
        spec=lambda w: noise_specs(study_runs(w))[w.noise],
        in_classes=study_in_classes,
        code=CODE["labels"],
    script:
        "../../scripts/labels.py"


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
