"""Study kind ``label_noise``: Rolnick et al. 2017, "Deep Learning is Robust to Massive Label
Noise": test accuracy versus the number alpha of noisy labels per clean label (Figure 1), with
the learning rate selected on validation accuracy per point (the paper's protocol).

``kind.py`` holds the kind's class and its registration; ``tables.py`` the selection table;
``claims.py`` the claims; ``figures.py`` the figures and the predicates that say which a study
draws.
"""

from corruptlab.studies.label_noise import kind  # noqa: F401 (registers the kind)
