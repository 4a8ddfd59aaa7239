"""The job boundary: one job from a validated config to a finished run directory.

`rundir` (the layout of a run directory) imports neither torch nor Hydra, so the analysis can
read runs without them; `job` trains, `resume` decides what to do with an existing directory,
`writer`, `summary` and `checkpoint` write it.
"""
