"""Study kind ``no_gd``: can a network be trained without gradient descent (issue 16: lottery
tickets, supermasks over frozen random weights (Zhou et al. 2019, Ramanujan et al. 2020),
evolution strategies and search (Zhang, Clune & Stanley 2017)), each run also scored for OOD
detection like an ``ood`` study's.

Files: ``kind.py`` the kind (class, run expansion, config checks), ``schema.yaml`` its study keys,
``tables.py`` the budget table and the helpers the claims and figures share, ``claims.py`` the
claims, ``figures.py`` the figures.
"""

from corruptlab.studies.no_gd import kind  # noqa: F401 (registers the kind)
