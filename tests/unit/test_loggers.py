"""The tracker set of a job: a failing tracker is dropped, a missing package named, a relaunch
may change trackers, and final numbers come from the summary."""

from __future__ import annotations

import logging
import math

import pytest

from lmexp.loggers import MissingTrackerPackage, Trackers, require_package
from lmexp.loggers.final import final_metrics
from lmexp.loggers.schema import LoggerConfig, TensorBoardConfig
from lmexp.run.record import config_changes


class Recording:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on

    def log_eval(self, row):
        self.calls.append(f"eval {row['step']}")
        if self.fail_on == "eval":
            raise ConnectionError("server gone")

    def finish(self, summary):
        self.calls.append(f"finish {summary['status']}")


def test_a_tracker_that_fails_is_dropped_and_the_others_go_on(caplog):
    good, bad = Recording(), Recording(fail_on="eval")
    trackers = Trackers({"tensorboard": good, "mlflow": bad})
    with caplog.at_level(logging.WARNING):
        trackers.log_eval({"step": 1})
        trackers.log_eval({"step": 2})
    trackers.finish({"status": "completed"})
    trackers.finish({"status": "completed"})  # a job ends once
    assert good.calls == ["eval 1", "eval 2", "finish completed"]
    assert bad.calls == ["eval 1"]
    assert "logger=mlflow failed and is stopped for this job: server gone" in caplog.text


def test_a_missing_tracker_package_says_how_to_install_it():
    with pytest.raises(MissingTrackerPackage, match=r"logger=mlflow needs the mlflow package"):
        require_package("mlflow", "lmexp_no_such_module")


def test_chosen_lists_the_trackers_set():
    assert LoggerConfig().chosen() == []
    assert LoggerConfig(tensorboard=TensorBoardConfig()).chosen() == ["tensorboard"]


def test_a_relaunch_may_change_the_trackers_but_nothing_else():
    before = {"logger": {"tensorboard": None, "mlflow": None}, "seed": 1}
    after = {"logger": {"tensorboard": {"dir": "tb", "hparams": True}, "mlflow": None}, "seed": 1}
    assert config_changes(before, after) == {}
    assert config_changes(before, {**after, "seed": 2}) == {"seed": (1, 2)}


def test_final_metrics_keep_numbers_and_infinities_only():
    summary = {"best_val_ppl": 120.5, "test_ppl": "inf", "final_val_ppl": None, "epochs": "x"}
    assert final_metrics(summary) == {"best_val_ppl": 120.5, "test_ppl": math.inf}
