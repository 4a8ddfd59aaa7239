"""One job, orchestrated: data, model, trainer, trackers and samples, into a run directory.

It sits above everything a job uses (`lmexp.training`, `lmexp.loggers`, `lmexp.inspect`) and
writes through the run-directory contract below them all (`lmexp.run`), which the analysis,
scoring and the trackers read without this package.
"""
