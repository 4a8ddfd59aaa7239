"""Whose line is it: the console's log lines name lmexp or Hydra, not always `[HYDRA]`.

Hydra formats every line of the launching process as `[time][HYDRA] message`, lmexp's
end-of-sweep summary and the search's progress included. This formatter names the source
from the logger's name, so a user reading the console knows which tool to look up.
"""

from __future__ import annotations

import logging

OURS = ("lmexp", "hydra_plugins.lmexp_search", "analysis")


class SourceFormatter(logging.Formatter):
    """`%(source)s` is `lmexp` for lmexp's loggers, `HYDRA` for every other one."""

    def format(self, record: logging.LogRecord) -> str:
        ours = record.name.split(".")[0] in OURS or record.name.startswith(OURS)
        record.source = "lmexp" if ours else "HYDRA"
        return super().format(record)
