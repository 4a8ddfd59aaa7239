"""analysis.collect: one row per job from hand-built run directories, whatever their state."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from analysis.collect import NoJobsError, collect, curves, find_job_dirs, read_metrics
from tests.fixtures_analysis import curve, job, mixed_sweep, write_job


@pytest.fixture
def jobs(tmp_path):
    collection = collect([mixed_sweep(tmp_path)])
    return collection.jobs.set_index("job_id"), collection.curves


def test_one_row_per_job_with_stable_ids(jobs) -> None:
    frame, curves = jobs
    assert len(frame) == 10
    assert "sweep/0-rnn-sgd" in frame.index and "sweep/9-gru-sgd" in frame.index
    assert set(curves) == set(frame.index)


def test_config_and_metrics_are_parsed(jobs) -> None:
    frame, curves = jobs
    row = frame.loc["sweep/2-rnn-adam"]
    assert (row.model, row.optim, row.lr, row.batch_size, row.seq_len) == ("rnn", "adam", 5, 20, 35)
    assert (row.hidden_size, row.emb_size, row.num_layers, row.seed) == (200, 200, 2, 1111)
    assert row.keep_prob == 1.0 and row.dropout == 0.0 and math.isnan(row.num_heads)
    assert row.best_val_ppl == 150 and row.best_epoch == 0.75
    assert row.train_ppl_at_best == pytest.approx(150 * 1.3)
    assert row.last_val_ppl == 170 and row.last_train_ppl == pytest.approx(170 * 1.3)
    assert row.test_ppl == pytest.approx(150 * 0.95) and row.params == 4170400
    assert row.status == "completed" and row.epochs == 1.0 and row.tokens_per_s == 7004.0
    assert row.command == "python -m lmexp.train model=rnn optim=adam"
    assert len(curves["sweep/2-rnn-adam"]) == 4


def test_transformer_has_no_embedding_size_and_rnn_no_heads(jobs) -> None:
    frame, _ = jobs
    assert math.isnan(frame.loc["sweep/7-transformer-adam", "emb_size"])
    assert frame.loc["sweep/7-transformer-adam", "num_heads"] == 4
    assert math.isnan(frame.loc["sweep/0-rnn-sgd", "ff_size"])


def test_truncated_last_csv_line_is_dropped(jobs, tmp_path) -> None:
    frame, curves = jobs
    assert len(curves["sweep/5-lstm-sgd"]) == 3
    assert frame.loc["sweep/5-lstm-sgd", "best_val_ppl"] == 110
    broken = tmp_path / "broken.csv"
    broken.write_text("epoch,val_ppl\n0.25,300.5\n0.5,2e\n")  # right field count, bad number
    assert read_metrics(broken)["val_ppl"].tolist() == [300.5]


def test_diverged_job_keeps_its_finite_best_and_inf_strings_parse(jobs) -> None:
    frame, curves = jobs
    row = frame.loc["sweep/6-transformer-sgd"]
    assert row.status == "diverged" and row.best_val_ppl == 500
    assert math.isinf(row.last_val_ppl) and math.isnan(row.test_ppl)
    assert math.isinf(curves["sweep/6-transformer-sgd"]["val_ppl"].iloc[-1])


def test_failed_job_without_metrics_rows_is_kept(jobs) -> None:
    frame, curves = jobs
    row = frame.loc["sweep/8-lstm-adam"]
    assert row.status == "failed" and row.error_type == "RuntimeError"
    assert row.error == "CUDA out of memory" and row.n_points == 0
    assert math.isinf(row.best_val_ppl)  # "inf" in summary.json parsed back to a float
    assert curves["sweep/8-lstm-adam"].empty


def test_job_without_summary_is_unknown_with_a_command_from_its_overrides(jobs) -> None:
    frame, _ = jobs
    row = frame.loc["sweep/9-gru-sgd"]
    assert row.status == "unknown" and row.best_val_ppl == 310 and row.n_points == 2
    assert row.command == "python -m lmexp.train model=gru optim=sgd"
    assert math.isnan(row.params) and row.wall_time_s == 20.0


def test_summary_inf_strings_parse_when_the_csv_is_empty(tmp_path) -> None:
    summary = {"status": "diverged", "best_val_ppl": "inf", "final_val_ppl": "nan"}
    write_job(tmp_path / "s", "0-rnn-sgd", rows=[], summary=summary)
    assert json.loads((tmp_path / "s/0-rnn-sgd/summary.json").read_text())["best_val_ppl"] == "inf"
    row = collect([tmp_path]).jobs.iloc[0]
    assert math.isinf(row.best_val_ppl) and math.isnan(row.last_val_ppl)


def test_ids_stay_unique_across_sweeps_with_the_same_name(tmp_path) -> None:
    job(tmp_path / "a" / "sweep", 0, "rnn", "sgd", [300])
    job(tmp_path / "b" / "sweep", 0, "rnn", "sgd", [200])
    job(tmp_path / "c" / "other", 0, "rnn", "sgd", [100])
    ids = collect([tmp_path / "a", tmp_path / "b", tmp_path / "c"]).jobs["job_id"].tolist()
    assert sorted(ids) == ["a/sweep/0-rnn-sgd", "b/sweep/0-rnn-sgd", "other/0-rnn-sgd"]


def test_run_dir_given_directly_and_twice_counts_once(tmp_path) -> None:
    run = write_job(tmp_path / "runs", "2026-01-01_00-00-00", rows=curve([300.0]), summary=None)
    assert find_job_dirs([run, tmp_path]) == [run.resolve()]


def test_missing_path_and_empty_dir_fail_clearly(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_job_dirs([tmp_path / "nope"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(NoJobsError, match="no job directories"):
        find_job_dirs([tmp_path / "empty"])


def test_a_report_written_inside_the_sweep_is_not_a_job(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    job(sweep, 0, "rnn", "sgd", [300])
    (sweep / "report" / "figures").mkdir(parents=True)  # sweeps/*.sh write --out <sweep>/report
    for name in ("results.csv", "report.md", "figures/exp01-rnn-sgd.png"):
        (sweep / "report" / name).write_text("x")
    assert [p.name for p in find_job_dirs([sweep])] == ["0-rnn-sgd"]


def test_interpolations_in_the_saved_config_are_resolved(tmp_path) -> None:
    # Hydra saves `hidden_size: ${model.emb_size}` unresolved (experiment=cmu10601_hw7/rnn_attn)
    sweep = tmp_path / "widths"
    for num, width in enumerate((64, 256)):
        model = {"emb_size": width, "hidden_size": "${model.emb_size}"}
        job(sweep, num, "rnn_attn", "adam", [300.0, 250.0], model=model)
    frame = collect([sweep]).jobs.set_index("job_id")
    assert frame.loc["widths/0-rnn_attn-adam", "hidden_size"] == 64
    assert frame.loc["widths/1-rnn_attn-adam", "hidden_size"] == 256


@pytest.mark.parametrize("garbage", ["[1, 2]", "42", '"running"', "{not json", "\xff\xfe"])
def test_a_malformed_summary_makes_its_job_unknown_not_the_report_crash(tmp_path, garbage) -> None:
    write_job(tmp_path / "s", "0-rnn-sgd", rows=[], summary={"status": "completed"})
    write_job(tmp_path / "s", "1-gru-sgd", rows=[], summary={"status": "completed"})
    (tmp_path / "s/0-rnn-sgd/summary.json").write_bytes(garbage.encode("latin-1"))
    frame = collect([tmp_path]).jobs.set_index("job_id")
    assert frame.loc["s/0-rnn-sgd"].status == "unknown"
    assert frame.loc["s/1-gru-sgd"].status == "completed"


def test_a_running_job_whose_process_died_is_shown_killed(tmp_path) -> None:
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    import socket

    summary = {"status": "running", "pid": int(gone.stdout), "host": socket.gethostname()}
    write_job(tmp_path / "s", "0-rnn-sgd", rows=[], summary=summary)
    assert collect([tmp_path]).jobs.iloc[0].status == "killed"


def test_rows_written_twice_for_one_step_are_flagged_and_kept_once(tmp_path) -> None:
    rows = [curve([300.0])[0], curve([300.0])[0]]
    write_job(tmp_path / "s", "0-rnn-sgd", rows=rows, summary={"status": "completed"})
    collection = collect([tmp_path])
    assert collection.jobs.iloc[0].duplicate_steps == 1
    assert len(collection.curves[collection.jobs.iloc[0].job_id]) == 1


def test_the_curves_are_one_tidy_frame_seaborn_takes_in_one_line(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import seaborn

    sweep = mixed_sweep(tmp_path)
    collection = collect([sweep])
    frame = curves([sweep])
    assert len(frame) == sum(len(c) for c in collection.curves.values())
    wanted = {"job_id", "model", "model_label", "optim", "status", "lr", "epoch", "val_ppl"}
    assert wanted <= set(frame.columns)
    with_rows = {job_id for job_id, curve in collection.curves.items() if len(curve)}
    assert set(frame["job_id"]) == with_rows  # 8-lstm-adam, killed before its first row: none
    one = frame[frame["job_id"] == collection.jobs["job_id"].iloc[0]]
    assert one["val_ppl"].tolist() == collection.curves[one["job_id"].iloc[0]]["val_ppl"].tolist()
    grid = seaborn.relplot(
        data=frame, x="epoch", y="val_ppl", hue="model", style="optim", kind="line"
    )
    assert grid.ax.get_lines()
    for count in ("step", "tokens", "job_num"):  # counts read back as integers, not 21.0
        assert pd.api.types.is_integer_dtype(frame[count]), (count, frame[count].dtype)


def test_a_jobs_facts_come_from_its_record_not_its_directory_name(tmp_path) -> None:
    """`.lmexp/` (written once, validated) wins over Hydra's files and over the job's name."""
    from lmexp.run.record import Launch, save_record
    from lmexp.run.rundir import RunDir

    job_dir = job(tmp_path / "sweep", 7, "gru", "sgd", [300, 200])
    config = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())
    config["model"] = {**config["model"], "name": "lstm", "hidden_size": 64}
    config["optim"] = {**config["optim"], "name": "adam", "lr": 0.002}
    save_record(RunDir(job_dir), config, Launch("python -m lmexp.train", ("seed=3",), 3))
    (row,) = collect([tmp_path]).jobs.to_dict("records")
    assert (row["model"], row["optim"], row["hidden_size"], row["lr"]) == (
        "lstm",
        "adam",
        64,
        0.002,
    )
    assert row["job_num"] == 3 and row["overrides"] == "seed=3"
