"""Reproductions of the papers at their own scale on real MNIST, and the ledger that sets their
numbers beside the papers'.

Each reproduction is a config file ``config/reproductions/<name>.yaml`` whose one study has the
same name. ``python -m corruptlab.reproductions run <name>`` runs it through Snakemake, timed,
and keeps its small outputs (claims and summary tables, figures, the config, provenance) in
``docs/reproductions/<name>/``; ``python -m corruptlab.reproductions ledger`` writes
``docs/reproductions.md`` from those files alone, so that text and tables cannot disagree.
"""
