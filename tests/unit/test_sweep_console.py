"""The end-of-sweep table and the sweep size behind the bars' k/N."""

from __future__ import annotations

from omegaconf import OmegaConf

from lmexp.callbacks import sweep_size, sweep_table, write_results
from lmexp.training.progress import job_label


def _config(task: list[str], sweeper: dict | None = None):
    return OmegaConf.create(
        {"hydra": {"overrides": {"task": task}, "sweeper": sweeper or {"params": None}}}
    )


def test_the_sweep_size_is_the_grids_or_the_studys():
    assert sweep_size(_config(["model=rnn,gru,transformer", "optim=sgd,adam", "seed=1"])) == 6
    assert sweep_size(_config(["seed=range(1,5)"])) == 4
    assert sweep_size(_config(["seed=1"], {"params": {"optim.lr": "0.1,0.01"}})) == 2
    assert sweep_size(_config(["model=gru"], {"n_trials": 30})) == 30
    assert sweep_size(_config(["optim.lr=interval(0.1,1)"])) is None  # nothing to count


def test_a_job_label_says_k_of_n():
    assert job_label(0, "0-rnn-sgd", 6) == "[1/6] 0-rnn-sgd"
    assert job_label(11, "11-gru-adam", None) == "[12/?] 11-gru-adam"
    assert job_label(None, "run", None) == "run"


def test_the_end_of_sweep_table_lists_every_job_in_launch_order(tmp_path):
    statuses = {
        "10-gru-adam": {"status": "failed", "job_num": 10},  # as sweep_statuses reads them
        "2-rnn-sgd": {
            "job_num": 2,
            "status": "completed",
            "best_val_ppl": 141.234,
            "test_ppl": "inf",
            "total_time_s": 3725.4,
        },
        "1-rnn-adam": {
            "status": "diverged",
            "best_val_ppl": 1234.5,
            "wall_time_s": 61,
            "job_num": 1,
        },
    }
    lines = sweep_table(statuses).splitlines()
    assert lines[0].split("|")[1:-1] == [
        " job         ",
        " status    ",
        "   best val ppl ",
        "   test ppl ",
        "   total time ",
    ]
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "1-rnn-adam",
        "2-rnn-sgd",
        "10-gru-adam",
    ]
    assert [c.strip() for c in lines[2].split("|")[1:-1]] == [
        "1-rnn-adam",
        "diverged",
        "1,234.50",
        "-",
        "1m 01s",
    ]
    assert [c.strip() for c in lines[3].split("|")[2:-1]] == [
        "completed",
        "141.23",
        "inf",
        "1h 02m",
    ]
    assert [c.strip() for c in lines[4].split("|")[2:-1]] == ["failed", "-", "-", "-"]
    path = write_results(tmp_path, statuses)
    assert path == tmp_path / "results.md"
    assert sweep_table(statuses) in path.read_text()


def test_batch_bars_count_in_whole_numbers_and_token_bars_in_millions():
    from lmexp.training.progress import make_progress

    with make_progress(118, "on", "validation", unit="batch") as bar:
        bar.update(21)
        assert "21/118" in str(bar)
    with make_progress(5_300_000, "on", "train") as bar:
        bar.update(1_200_000)
        assert "1.20M/5.30M" in str(bar)


def test_the_end_of_a_sweep_names_its_best_completed_job():
    from lmexp.callbacks import best_job

    statuses = {
        "0-gru-sgd-lr=1": {"status": "completed", "best_val_ppl": 300.0},
        "1-gru-sgd-lr=5": {"status": "completed", "best_val_ppl": 250.5},
        "2-gru-sgd-lr=50": {"status": "pruned", "best_val_ppl": 100.0},  # less budget
        "3-gru-sgd-lr=500": {"status": "diverged", "best_val_ppl": "inf"},
    }
    assert best_job(statuses) == "1-gru-sgd-lr=5 (best val ppl 250.50)"
    assert best_job({"0-gru-sgd": {"status": "completed", "best_val_ppl": 1.0}}) is None
