"""The training loop and what it is made of: budgets, losses, optimizers, schedules, evaluation.

Nothing here knows about run directories or Hydra: `lmexp.run` drives a `Trainer` and writes
what it reports.
"""
