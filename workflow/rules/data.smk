# Datasets: download (on a login node / where the internet is), then one prepared file each.


rule download:
    output:
        directory("resources/datasets/{dataset}/raw"),
    params:
        mirrors=config["data"]["mirrors"],
    log:
        "resources/datasets/{dataset}/logs/download.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/download.py"


def prepare_input(wildcards):
    if is_downloadable(wildcards.dataset):
        return {"raw": f"resources/datasets/{wildcards.dataset}/raw"}
    return {}


rule prepare:
    input:
        unpack(prepare_input),
    output:
        "resources/datasets/{dataset}/data.pt",
    params:
        split_seed=config["data"]["split_seed"],
        code=CODE["prepare"],
    log:
        "resources/datasets/{dataset}/logs/prepare.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/prepare.py"


rule labels:
    input:
        data=dataset_file,
    output:
        "results/{study}/labels/{noise}/seed{seed}.npz",
    params:
        spec=lambda w: noise_specs(study_runs(w))[w.noise],
        code=CODE["labels"],
    log:
        "results/{study}/logs/labels/{noise}/seed{seed}.log",
    conda:
        "../../envs/corruptlab.yaml"
    script:
        "../../scripts/labels.py"
