"""The end-to-end peer benchmark's parts: data cut, commands, fetching, finding, parsing, ratios.

Nothing here times anything or trains: the commands are only composed (`--cfg job`), the fetch
talks to an HTTP server on 127.0.0.1, and the runs are made up.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks.peer import corpus, source
from benchmarks.peer.commands import ARCHS, lmexp_overrides, parse_archs, peer_command
from benchmarks.peer.phases import Phases, parse_peer, read_lmexp
from benchmarks.peer.report import summarise, table
from benchmarks.peer.timing import Run, order
from lmexp.config import to_train_config
from lmexp.data.batching import batchify, num_windows
from lmexp.data.ptb import read_tokens
from lmexp.run.rundir import RunDir
from tests.conftest import REPO

TIMEOUT_S = 5.0
MIRROR = Path(os.environ.get("LMEXP_PEER_MIRROR", "/work/.mirror/pytorch+examples/repo"))
Serve = Callable[[Path], str]


# --- the data folder


def test_cut_lines_keeps_the_shortest_prefix_that_fills_the_windows() -> None:
    lines = [" a b c \n"] * 2000  # 4 tokens a line with its <eos>
    cut = corpus.cut_lines(lines, 3)
    tokens = sum(corpus.count_tokens(line) for line in cut)
    target = corpus.BATCH * (corpus.SEQ_LEN * 3 + 1)  # 2,120: each row needs one more target
    assert tokens >= target > tokens - 4
    assert corpus.windows_of(tokens) == 3


def test_cut_lines_refuses_more_windows_than_the_file_holds() -> None:
    with pytest.raises(corpus.CorpusError, match=r"more than the 2 windows .* --batches 2"):
        corpus.cut_lines([" a b c \n"] * 400, 50)  # 1,600 tokens: 80 a row, 2 full windows


def test_words_outside_the_vocabulary_become_unk_and_untouched_lines_stay_as_they_were() -> None:
    lines = [" the cat \n", " the dog sat\n", "\n"]
    mapped, unknown = corpus.map_unknown(lines, {"the", "cat", "<eos>"})
    assert mapped == [" the cat \n", " the <unk> <unk> \n", "\n"]
    assert unknown == 2


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> corpus.Prepared:
    from tests.conftest import require_data_dir

    out = tmp_path_factory.mktemp("peer_data")
    return corpus.prepare(require_data_dir() / "ptb", out, 5)


def test_prepared_train_file_gives_the_windows_asked_for_as_lmexp_counts(prepared) -> None:
    root = Path(prepared.root)
    tokens = read_tokens(root / "train.txt")  # lmexp's PTB reader: words + <eos> per line
    assert len(tokens) == prepared.train_tokens
    streams = batchify(torch.zeros(len(tokens), dtype=torch.long), corpus.BATCH)
    assert num_windows(streams, corpus.SEQ_LEN) == prepared.windows == 5
    assert len((root / "train.txt").read_text().splitlines()) == prepared.train_lines


def test_prepared_folder_holds_every_split_under_both_names(prepared, data_dir) -> None:
    root = Path(prepared.root)
    for split in corpus.SPLITS:
        plain, ptb = root / f"{split}.txt", root / f"ptb.{split}.txt"
        assert plain.is_file() and plain.samefile(ptb)
    for split in ("valid", "test"):  # whole, token for token, with unseen words as <unk>
        ours = read_tokens(root / f"{split}.txt")
        original = read_tokens(data_dir / "ptb" / f"ptb.{split}.txt")
        assert len(ours) == len(original)
        vocab = set(read_tokens(root / "train.txt"))
        assert set(ours) <= vocab
        changed = sum(a != b for a, b in zip(ours, original, strict=True))
        assert changed == getattr(prepared, f"{split}_unk") > 0


def test_a_prepared_folder_is_reused(prepared) -> None:
    root = Path(prepared.root)
    stamp = (root / "train.txt").stat().st_mtime_ns
    again = corpus.prepare(root.parent / "no_ptb_here", root.parent, 5)  # the source is not read
    assert again == prepared
    assert (root / "train.txt").stat().st_mtime_ns == stamp


# --- the commands


def _yaml_job(overrides: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "lmexp.train", *overrides, "--cfg", "job"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return yaml.safe_load(proc.stdout)


@pytest.mark.parametrize("name", list(ARCHS))
def test_every_lmexp_command_composes_with_the_peers_values(name, tmp_path) -> None:
    overrides = lmexp_overrides(ARCHS[name], tmp_path / "data", tmp_path / "run", threads=2)
    job = _yaml_job(overrides)
    assert job["model"]["name"] == name
    assert job["model"]["hidden_size"] == 200 and job["model"]["num_layers"] == 2
    assert job["model"]["dropout"] == 0.2
    assert job["data"]["name"] == "text" and job["data"]["root"] == str(tmp_path / "data")
    assert (job["data"]["batch_size"], job["data"]["eval_batch_size"]) == (20, 10)
    assert job["data"]["seq_len"] == 35
    assert (job["optim"]["name"], job["optim"]["lr"]) == ("sgd", 20.0)
    assert job["trainer"]["clip_norm"] == 0.25 and job["trainer"]["max_epochs"] == 1
    assert job["trainer"]["divergence_ppl"] is None  # the peer never stops early either
    assert (job["seed"], job["threads"], job["device"]) == (1111, 2, "cpu")
    if name == "transformer":
        assert (job["model"]["num_heads"], job["model"]["ff_size"]) == (2, 200)
    else:
        assert job["model"]["emb_size"] == 200 and job["model"]["impl"] == "fused"


@pytest.mark.parametrize("name", list(ARCHS))
def test_every_lmexp_command_passes_lmexps_checks(compose, name, tmp_path) -> None:
    # --cfg job only composes; the architecture's own rules (e.g. a fused GRU needs
    # gru_variant=reset_after) run in to_train_config, as they do when the job starts.
    overrides = lmexp_overrides(ARCHS[name], tmp_path, tmp_path / "run")
    to_train_config(compose([o for o in overrides if not o.startswith("hydra.")]))


def test_the_peer_command_sets_every_flag_and_heads_for_the_transformer(tmp_path) -> None:
    cmd = peer_command(ARCHS["transformer"], tmp_path, tmp_path / "d", tmp_path / "m.pt", "py")
    flags = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert cmd[:2] == ["py", str(tmp_path / "main.py")]
    assert flags["--model"] == "Transformer" and flags["--nhead"] == "2"
    assert (flags["--emsize"], flags["--nhid"], flags["--nlayers"]) == ("200", "200", "2")
    assert (flags["--lr"], flags["--clip"], flags["--dropout"]) == ("20", "0.25", "0.2")
    assert (flags["--batch_size"], flags["--bptt"], flags["--epochs"]) == ("20", "35", "1")
    lstm = peer_command(ARCHS["lstm"], tmp_path, tmp_path, tmp_path / "m.pt", cuda=True)
    assert "--nhead" not in lstm and lstm[-1] == "--accel"


def test_unknown_archs_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown \['lstmm'\]; choose from"):
        parse_archs("lstm,lstmm")


# --- finding and fetching the peer


def _example(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in source.FILES:
        (folder / name).write_text(f"# {name}\n")
    return folder


def test_the_peer_is_found_in_a_checkout_or_its_example_folder(tmp_path) -> None:
    example = _example(tmp_path / "examples" / source.FOLDER)
    assert source.resolve_peer_dir(tmp_path / "examples") == example.resolve()
    assert source.resolve_peer_dir(example) == example.resolve()


def test_a_missing_or_wrong_peer_dir_says_what_to_point_at(tmp_path) -> None:
    with pytest.raises(source.PeerError, match="does not exist; point --peer-dir"):
        source.resolve_peer_dir(tmp_path / "nowhere")
    with pytest.raises(source.PeerError, match="holds no main.py, model.py, data.py"):
        source.resolve_peer_dir(tmp_path)


def test_without_a_peer_the_error_gives_both_fixes(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(source.ENV_VAR, raising=False)
    with pytest.raises(source.PeerError) as info:
        source.find_peer(None, fetch=False, cache=tmp_path)
    message = str(info.value)
    assert "--peer-dir" in message and source.ENV_VAR in message and "--fetch" in message
    assert "\n" not in message


def test_the_environment_variable_names_the_peer(tmp_path, monkeypatch) -> None:
    example = _example(tmp_path / source.FOLDER)
    monkeypatch.setenv(source.ENV_VAR, str(tmp_path))
    assert source.find_peer(None, fetch=False) == example.resolve()


def test_pinned_digests_are_those_of_the_files_at_the_commit() -> None:
    if not MIRROR.is_dir():
        pytest.skip(f"no pytorch/examples mirror at {MIRROR}")
    for name, digest in source.FILES.items():
        blob = subprocess.run(
            ["git", f"--git-dir={MIRROR}", "show", f"{source.COMMIT}:{source.FOLDER}/{name}"],
            capture_output=True,
            check=True,
        ).stdout
        assert hashlib.sha256(blob).hexdigest() == digest, name


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the request log out of pytest's output."""


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Serve a folder over HTTP on a free loopback port; return its base URL."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT_S)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder serving three stand-in files, with their digests pinned in their place."""
    folder = _example(tmp_path / "site")
    pins = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in source.FILES}
    monkeypatch.setattr(source, "FILES", pins)
    return folder


def test_fetch_keeps_the_files_whose_digests_match(serve, site, tmp_path) -> None:
    cache = tmp_path / "cache"
    found = source.fetch_peer(cache, serve(site), timeout=TIMEOUT_S)
    assert found == cache.resolve()
    assert sorted(p.name for p in cache.iterdir()) == sorted(source.FILES)
    for name in source.FILES:
        assert (cache / name).read_bytes() == (site / name).read_bytes()


def test_fetch_refuses_a_tampered_file_and_keeps_nothing_of_it(serve, site, tmp_path) -> None:
    (site / "model.py").write_text("import os; os.system('echo tampered')\n")
    cache = tmp_path / "cache"
    with pytest.raises(source.PeerError) as info:
        source.fetch_peer(cache, serve(site), timeout=TIMEOUT_S)
    message = str(info.value)
    assert message.startswith("refused http://127.0.0.1:") and "/model.py" in message
    assert source.FILES["model.py"] in message and "nothing was kept" in message
    assert "\n" not in message
    assert not (cache / "model.py").exists()
    assert not any(p.name.endswith(".part") for p in cache.iterdir())


def test_fetched_files_are_reused_without_the_network(serve, site, tmp_path) -> None:
    cache = tmp_path / "cache"
    source.fetch_peer(cache, serve(site), timeout=TIMEOUT_S)
    assert (
        source.fetch_peer(cache, "http://127.0.0.1:9/nothing", timeout=TIMEOUT_S) == cache.resolve()
    )


def test_an_unreachable_server_says_how_to_do_without_it(site, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(source.PeerError, match="could not download .* --peer-dir PATH"):
        source.fetch_peer(tmp_path / "cache", "http://127.0.0.1:9", timeout=TIMEOUT_S)
    assert not any(p.name.endswith(".part") for p in (tmp_path / "cache").iterdir())


# --- reading each process's phases


PEER_STDOUT = """Using device: cpu
-----------------------------------------------------------------------------------------
| end of epoch   1 | time:  5.77s | valid loss  7.66 | valid ppl  2112.85
-----------------------------------------------------------------------------------------
=========================================================================================
| End of training | test loss  7.71 | test ppl  2219.59
=========================================================================================
"""


def test_the_peers_epoch_and_perplexities_come_from_its_stdout() -> None:
    phases = parse_peer(PEER_STDOUT)
    assert (phases.epoch_s, phases.val_ppl, phases.test_ppl) == (5.77, 2112.85, 2219.59)
    with pytest.raises(ValueError, match="no end-of-epoch or test line"):
        parse_peer("Using device: cpu\n")


def test_lmexps_epoch_and_timings_come_from_its_job_directory(tmp_path) -> None:
    run = RunDir(tmp_path)
    header = "epoch,step,train_time_s,eval_time_s,wall_time_s,val_ppl\n"
    run.metrics.write_text(header + "0.5,2,1.0,0.5,2.0,900\n1.0,4,2.0,0.25,3,800\n")
    summary = {
        "status": "completed",
        "test_ppl": 810.5,
        "vocab_size": 2707,
        "timings": {"startup_s": 1.5, "test_s": 0.75, "label": "x", "flag": True},
    }
    run.summary.write_text(json.dumps(summary))
    phases = read_lmexp(tmp_path)
    assert (phases.train_s, phases.eval_s, phases.epoch_s) == (2.0, 0.75, 2.75)
    assert (phases.val_ppl, phases.test_ppl, phases.vocab_size) == (800.0, 810.5, 2707)
    assert phases.timings == {"startup_s": 1.5, "test_s": 0.75}


def test_an_unfinished_lmexp_run_is_an_error(tmp_path) -> None:
    run = RunDir(tmp_path)
    run.metrics.write_text("train_time_s,eval_time_s,val_ppl\n1,1,1\n")
    run.summary.write_text(json.dumps({"status": "failed"}))
    with pytest.raises(ValueError, match="ended 'failed', not completed"):
        read_lmexp(tmp_path)
    run.summary.write_text(json.dumps({"status": "diverged", "steps": 8}))
    with pytest.raises(ValueError, match="non-finite after 8 steps, so it did less work"):
        read_lmexp(tmp_path)


# --- order and ratios


def test_pairs_alternate_which_tool_goes_first() -> None:
    assert [order(p) for p in range(3)] == [
        ("lmexp", "peer"),
        ("peer", "lmexp"),
        ("lmexp", "peer"),
    ]


def _run(tool: str, pair: int, wall: float, epoch: float) -> Run:
    phases = Phases(epoch, 100.0, 110.0, train_s=epoch - 1, eval_s=1.0, vocab_size=50)
    if tool == "lmexp":
        phases.timings = {"startup_s": 1.0, "train_s": epoch - 1}
    return Run("lstm", tool, pair, 0, wall, 0.5 if pair == 1 else 0.0, phases)


def test_the_row_has_both_medians_their_ratio_and_the_pair_range() -> None:
    runs = [
        _run("lmexp", 0, 10.0, 6.0),
        _run("peer", 0, 20.0, 15.0),
        _run("lmexp", 1, 12.0, 7.0),
        _run("peer", 1, 18.0, 14.0),
        _run("lmexp", 2, 11.0, 6.5),
        _run("peer", 2, 22.0, 16.0),
    ]
    row = summarise(ARCHS["lstm"], runs, windows=400, peer_vocab=50)
    assert (row["lmexp_median_s"], row["peer_median_s"], row["x_faster"]) == (11.0, 20.0, 1.818)
    assert (row["pair_ratio_min"], row["pair_ratio_max"]) == (1.5, 2.0)
    assert (row["lmexp_epoch_s"], row["lmexp_outside_s"]) == (6.5, 4.5)
    assert (row["peer_epoch_s"], row["peer_outside_s"]) == (15.0, 5.0)
    assert row["lmexp_timings_startup_s"] == 1.0 and row["lmexp_untimed_s"] == 11.0 - 6.5
    assert row["runs_under_load"] == 2 and row["notes"] == "both nn.LSTM"
    assert "| lstm | 11.00 | 20.00 | 1.82 | 1.50–2.00 |" in table([row])
    other = summarise(ARCHS["lstm"], runs, windows=400, peer_vocab=60)
    assert "vocabularies differ: lmexp 50, peer 60" in other["notes"]
    for run in runs[1::2]:
        run.phases.val_ppl = 1.1e12  # the peer's RNN at lr 20
    diverged = summarise(ARCHS["lstm"], runs, 400, 50)
    assert "peer diverged at lr 20" in diverged["notes"]
    assert "| 100.0 / 1.1e+12 |" in table([diverged])
