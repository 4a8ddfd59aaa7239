"""Hyper-parameter search: an Optuna study run as a Hydra sweep (`-m sweep=optuna`).

`space` turns Hydra's sweep syntax into Optuna distributions, `study` opens or resumes the
study and keeps its trials honest across interruptions, `sweep` is the ask-launch-tell loop the
sweeper plugin (`hydra_plugins.lmexp_search`) runs.
"""
