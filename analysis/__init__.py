"""Analysis of finished (or running) lmexp jobs: tables, learning curves and a report.

Reads only the run-directory contract (`.hydra/config.yaml`, `.hydra/overrides.yaml`,
`metrics.csv`, `summary.json`); never imports torch or Hydra. Entry point: `python -m
analysis.report <sweep_or_run_dir>... --out <dir>`.
"""
