"""The run-directory contract: what a job leaves on disk, and how every reader finds it.

`rundir` and `sweepdir` (the layouts of a job and of a sweep directory), `summary`, `record`,
`resume`, `liveness`, `timings` and `signals` import neither torch nor Hydra, so the analysis
reads runs without them; `checkpoint` reads and writes the .pt files. This layer imports no
other lmexp package but `lmexp.atomic`: the job that writes it is `lmexp.job`, above it.
"""
