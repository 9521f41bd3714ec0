"""Study kind ``batchnorm``: what batch normalisation buys (Bjorck, Gomes, Selman & Weinberger
2018, "Understanding Batch Normalization"; issue 18). Models with batch norm and their twins
without it (the model registry's ``without_bn`` fact: the same widths and depths) are trained
over a log grid of learning rates, each run from a named initialisation (``init``: kaiming or
xavier, a grid axis of its own), every epoch (no early stopping; the last weights are kept), and
measured at initialisation on a few training minibatches (``probe``: per-layer gradient norms and
tails, activation mean and std per layer, relative loss vs step size;
``corruptlab.train.probes``).

"Diverged" is the trainer's status: a non-finite (NaN or inf) training loss in some epoch. A run
that stays finite but at chance is *not* diverged; it does not "train" either: the largest lr
that trains is the largest at which a run is finite *and* its clean test accuracy exceeds
``LEARNS_ABOVE`` (0.5).

Runs: inits x models x noise x optimizer settings x batch sizes x epochs x seeds; a run's path
names its initialisation after the noise: ``mlp_d10/none/kaiming/sgd-lr0.1-m0.9-wd0.0005-bs128/
seed0``. Light at import (no torch, no matplotlib).

Files: ``kind.py`` the class (its outputs, checks and run expansion), ``schema.yaml`` its keys
(``init``, ``moderate_lr``, ``probe``), ``tables.py`` the derived tables, ``claims.py`` the
paper's claims, ``figures.py`` the figures.
"""

from corruptlab.studies.batchnorm import kind  # noqa: F401 (registers the kind)
