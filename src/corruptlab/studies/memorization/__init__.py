"""The memorization study kind: per-example difficulty across seeds (Arpit et al. 2017, *A Closer
Look at Memorization in Deep Networks*, Figure 1, and the critical sample ratio).

Many runs of the same small job, one per seed, classify the same examples; per example, the share
of seeds that classify it correctly, P(correct), is compared with a Binomial of the mean accuracy
(every example alike: randX) for real data, randX (noise inputs) and randY (random labels).

- ``kind.py``: the ``Memorization`` class (its tables, figures and claims), config checks, and
  each run's extras (every epoch trained, the critical sample ratio's epochs);
- ``schema.yaml``: the JSON schema of the ``memorization:`` study keys;
- ``tables.py``: per-example P(correct) over seeds, the Binomial pmf, the ``p_correct`` and
  ``csr`` tables;
- ``claims.py``: the chi-square goodness-of-fit test against a Binomial, and the claims;
- ``figures.py``: the sorted P(correct) curves with their Binomial reference, the critical
  sample ratio over epochs, and the hardest and easiest examples.
"""

from corruptlab.studies.memorization import kind  # noqa: F401 (registers the kind)
