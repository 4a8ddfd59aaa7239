"""Inside trained runs: scoring (`lmexp.load`), sanity checks, per-time-step loss and gradient
flow, and text generation. Each reads a finished run directory; none of it trains."""
