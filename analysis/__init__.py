"""Analysis of finished (or running) lmexp jobs: tables, learning curves and a report.

Reads only the run-directory contract (`lmexp.run`: each job's record, `metrics.csv`,
`summary.json`, with Hydra's `.hydra/` for jobs of an lmexp that kept no record); never imports
torch or Hydra. Entry point: `python -m
analysis.report <sweep_or_run_dir>... --out <dir>`.
"""
