"""Seeded fuzz of every file of a run directory: the readers fail in one line or not at all.

Each case mutates one file of a copy of a trained run (random bytes, a truncation, a JSON value
swapped for another type, a CSV field garbled, a pickle's bytes flipped), then opens the run
the ways a user does: the report's reader (`analysis.collect`, which must never fail on a bad
job: it shows it), and scoring (`lmexp.load`, behind evaluate, generate and internals), which
may refuse the run with a one-line ValueError or OSError, and nothing else. No case may run
code or change a file of another run. Bounded: a fixed seed and count, about a minute.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import pytest

import lmexp
from analysis.collect import collect

pytestmark = [pytest.mark.slow, pytest.mark.faults]

CASES = 200
FILES = (
    "summary.json",
    "metrics.csv",
    "vocab.json",
    "corpus.json",
    ".lmexp/config.json",
    ".lmexp/launch.json",
    "checkpoints/best.pt",
)
ODD_VALUES = (None, 0, -1, 1e308, "x" * 300, [], {}, [[[]]], True, "inf", "../../etc")


def _mutate(path: Path, rng: random.Random) -> str:
    data = path.read_bytes()
    how = rng.choice(("bytes", "truncate", "json", "csv", "empty"))
    if how == "json" and path.suffix == ".json":
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if isinstance(value, dict) and value:
            key = rng.choice(sorted(value))
            value[key] = rng.choice(ODD_VALUES)
        elif isinstance(value, list) and value:
            value[rng.randrange(len(value))] = rng.choice(ODD_VALUES)
        else:
            value = rng.choice(ODD_VALUES)
        path.write_text(json.dumps(value))
    elif how == "csv" and path.suffix == ".csv":
        lines = data.decode("utf-8", "replace").splitlines(keepends=True)
        k = rng.randrange(len(lines))
        fields = lines[k].rstrip("\r\n").split(",")
        fields[rng.randrange(len(fields))] = rng.choice(("", "nan", "abc", "1e999", '"', "-0"))
        lines[k] = ",".join(fields) + "\r\n"
        path.write_text("".join(lines))
    elif how == "truncate":
        path.write_bytes(data[: rng.randrange(len(data) + 1)])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        path.write_bytes(bytes(buf))
    return how


def test_mutated_run_files_are_refused_in_one_line_or_read(trained_runs, tmp_path) -> None:
    rng = random.Random(20261204)
    other = trained_runs["rnn"]  # another run: no case may touch it
    untouched = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    refused = read = 0
    for case in range(CASES):
        run = Path(shutil.copytree(trained_runs["gru"], tmp_path / f"case{case}" / "0-gru-adam"))
        name = rng.choice(FILES)
        how = _mutate(run / name, rng)
        where = f"case {case}: {how} {name}"
        jobs = collect([run.parent]).jobs  # the report shows every job, whatever its files
        assert len(jobs) == 1, where
        try:
            lm = lmexp.load(run)
        except (ValueError, OSError) as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), f"{where}: {message[:500]}"
            refused += 1
        else:
            assert lm.next_log_probs("the").shape[0] == len(lm.vocab), where
            read += 1
        shutil.rmtree(run.parent)
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == untouched
    assert refused > 0 and read > 0  # both paths were exercised


# A module a crafted run might name; importing it leaves a mark (no case may)
MARKER_MODULE = """
from pathlib import Path
Path(__file__).with_name("ran").write_text("imported")
def boom(*args):
    Path(__file__).with_name("ran").write_text("called")
class Model:
    def __init__(self, *args, **kwargs):
        boom()
"""


class _Crafted:
    """Pickled as a call of `fuzzmarker.boom`: what a hostile checkpoint would carry."""

    def __reduce__(self):
        import fuzzmarker

        return (fuzzmarker.boom, ())


CHECKPOINT_CHANGES = ("drop", "odd", "shape", "dtype", "extra", "custom", "unknown", "crafted")


def _mutate_checkpoint(path: Path, rng: random.Random, how: str | None = None) -> str:
    """A structural change of a checkpoint's plain data, saved again with torch.save."""
    import torch

    payload = torch.load(path, weights_only=True)
    how = how or rng.choice(CHECKPOINT_CHANGES)
    if how == "drop":
        del payload[rng.choice(sorted(payload))]
    elif how == "odd":
        payload[rng.choice(sorted(payload))] = rng.choice(ODD_VALUES)
    elif how in ("shape", "dtype", "extra"):
        weights = payload["model"]
        key = rng.choice(sorted(weights))
        if how == "shape":
            weights[key] = torch.zeros(3)
        elif how == "dtype":
            weights[key] = weights[key].to(torch.int64)
        else:
            weights["extra.weight"] = torch.zeros(2)
    elif how == "custom":  # a saved run that would choose code
        payload["config"]["model"] = {"name": "custom", "_target_": "fuzzmarker.Model"}
    elif how == "unknown":
        payload["config"]["model"]["name"] = "lstm_of_tomorrow"
    else:
        payload["model"] = _Crafted()
    torch.save(payload, path)
    return how


def _one_command(name: str, main, argv: list[str], capsys, where: str) -> int:
    """Run a command's `main`: 0 or 1 (a result), or 2 with exactly one line on stderr."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), f"{where}: {name} exited {code}"
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"{where}: {name}: {err[-1500:]}"
    return code


def test_mutated_run_files_through_every_command(
    trained_runs, tmp_path, capsys, monkeypatch
) -> None:
    """evaluate, generate, internals and the report on mutated copies of a run, crafted
    checkpoints among them: each ends in a result or one line; nothing imports the module a
    crafted file names, and no other run changes."""
    from analysis.report import main as report
    from lmexp.inspect.evaluate import main as evaluate
    from lmexp.inspect.generate import main as generate
    from lmexp.inspect.internals import main as internals

    code = tmp_path / "code"  # the working directory, importable: a run must not reach it
    code.mkdir()
    (code / "fuzzmarker.py").write_text(MARKER_MODULE)
    monkeypatch.chdir(code)
    monkeypatch.syspath_prepend(str(code))
    rng = random.Random(20261206)
    other = trained_runs["rnn"]
    untouched = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    codes: list[int] = []
    for case in range(30):
        run = Path(shutil.copytree(trained_runs["gru"], tmp_path / f"case{case}" / "0-gru-adam"))
        name = rng.choice((*FILES, "checkpoints/last.pt", "checkpoints/best.pt"))
        if case < len(CHECKPOINT_CHANGES):  # each change once on the checkpoint commands read
            name, change = "checkpoints/best.pt", CHECKPOINT_CHANGES[case]
            how = _mutate_checkpoint(run / name, rng, change)
        elif name.endswith(".pt"):
            how = _mutate_checkpoint(run / name, rng)
        else:
            how = _mutate(run / name, rng)
        where = f"case {case}: {how} {name}"
        sys.modules.pop("fuzzmarker", None)  # crafting imported it: a later import marks again
        (code / "ran").unlink(missing_ok=True)
        for command, main, argv in (
            ("evaluate", evaluate, [str(run), "--split", "valid", "--pairs", "1"]),
            ("generate", generate, [str(run), "--num", "1", "--lengths", "3"]),
            ("internals", internals, [str(run), "--split", "valid"]),
        ):
            codes.append(_one_command(command, main, argv, capsys, where))
        if case % 6 == 0:  # the report draws figures: a few cases, every kind of file over all
            out = tmp_path / f"report{case}"
            assert (
                _one_command(
                    "report", report, [str(run.parent), "--out", str(out), "--quiet"], capsys, where
                )
                == 0
            )
        assert not (code / "ran").exists(), f"{where}: code named by the run was run"
        shutil.rmtree(run.parent)
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == untouched
    assert 2 in codes and 0 in codes  # refused and read both happened
