"""Study kind ``ood``: Hendrycks & Gimpel 2017, "A Baseline for Detecting Misclassified and
Out-of-Distribution Examples": how well the max-softmax probability (and entropy, energy,
max-logit) tells test images from OOD sets (noise images, corrupted test images, other datasets,
held-out classes): AUROC, FPR at 95% TPR, AUPR per set and score.

kind.py: the kind, its checks and OOD sets; schema.yaml: its keys (``ood:``); tables.py: the
``ood_metrics`` table; claims.py: the paper's claims; figures.py: ROC curves and AUROC grid."""

from corruptlab.studies.ood import kind  # noqa: F401 (registers the kind)
