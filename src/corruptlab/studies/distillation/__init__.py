"""Study kind ``distillation``: Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a
Neural Network" (issue 17): teachers -> their soft targets -> students, the paper's "mythical 3",
its 7s-and-8s transfer set, and teachers trained on noisy labels.

- kind.py: the StudyKind class (outputs, eval conditions, config checks), the runs' expansion
  (teachers, then students per transfer set) and ``register``;
- schema.yaml: the JSON schema of the kind's own study keys;
- tables.py: ``errors`` and ``summary`` (and the constants the other files share);
- claims.py: the claim functions and the published numbers they cite;
- figures.py: the figure functions.
"""

from corruptlab.studies.distillation import kind  # noqa: F401 (registers the kind)
