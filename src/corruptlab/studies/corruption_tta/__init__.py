"""Study kind ``corruption_tta``: Wang et al. 2021, "Tent: Fully Test-Time Adaptation by Entropy
Minimization": error, loss and entropy under image corruptions at five severities, without
adaptation (source), with test-batch statistics (norm) and with entropy minimisation (tent);
mCE relative to a baseline model (Hendrycks & Dietterich 2019).

``kind.py`` holds the kind's class, its config check and its registration; ``schema.yaml`` its
study key (``baseline_model``); ``tables.py`` the tables ``corruption_errors`` (with mCE) and
``entropy_deciles``; ``claims.py`` the claims; ``figures.py`` the figures.
"""

from corruptlab.studies.corruption_tta import kind  # noqa: F401 (registers the kind)
