"""Shared test helpers: where the real corpora are, and Hydra composition without launching."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lmexp.models import names

# Under `pytest -n N` every worker is a torch user of the same cores: with torch's default of
# one intra-op thread per core, the tiny ops of in-process tests wait on threads the other
# worker holds (the paired t-test of tests/unit/test_pack_step.py: 10 s with one thread, 81 s
# with two, beside a busy worker). One thread each; the processes tests start set their own.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
# docs/examples/bigram.py, the documented `model=custom` class, is importable as `bigram`
EXAMPLES = REPO / "docs" / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))


# Signals a test's child must receive as a terminal would deliver them, whatever this process
# inherited: `nohup` ignores SIGHUP, a background job of a non-interactive shell SIGINT and SIGQUIT,
# and an ignored disposition survives exec (lmexp rightly leaves an ignored signal ignored).
CHILD_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
_CHILDREN: list[subprocess.Popen] = []


class _OwnedChild(subprocess.Popen):
    """Every child a test starts: default signal dispositions, and its own process group, so
    `kill_children` can end it and everything it started (joblib workers, a sweep's jobs)."""

    def __init__(self, *args, **kwargs) -> None:
        given = kwargs.pop("preexec_fn", None)

        def reset_signals() -> None:
            for sig in CHILD_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            if given is not None:
                given()

        kwargs["preexec_fn"] = reset_signals
        kwargs["start_new_session"] = True  # a group of its own: killable as a whole
        super().__init__(*args, **kwargs)
        _CHILDREN.append(self)


# Patched here, at import, so that session fixtures' children are covered too; subprocess.run
# looks `Popen` up in its module, so it starts an _OwnedChild as well.
subprocess.Popen = _OwnedChild  # type: ignore[misc]


def kill_children() -> None:
    """SIGKILL the process group of every child started so far, running or not (its leader may
    have exited and left a grandchild), and reap the leaders."""
    while _CHILDREN:
        child = _CHILDREN.pop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=30)


@pytest.fixture(autouse=True)
def _children_end_with_their_test():
    """Whatever a test does (fails, times out waiting, raises), nothing it started outlives it."""
    yield
    kill_children()


def pytest_sessionfinish(session, exitstatus) -> None:
    kill_children()  # those of session fixtures


def shared_data_dir() -> Path | None:
    """`$LMEXP_DATA_DIR`, else the `shared/data` folder beside the checkout, else None."""
    env = os.environ.get("LMEXP_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "ptb" / "ptb.train.txt").exists():
            return path
    return None


def require_data_dir() -> Path:
    """The data folder, or a skip on a machine that has none.

    Where the data was pointed at (`LMEXP_DATA_DIR` set) or under CI, missing files are a
    failure, never a skip: a green run must not hide that the data tests did not run.
    """
    path = shared_data_dir()
    if path is not None:
        return path
    message = "PTB not found: set LMEXP_DATA_DIR to a folder holding ptb/ptb.{train,valid,test}.txt"
    if os.environ.get("LMEXP_DATA_DIR") or os.environ.get("CI"):
        pytest.fail(f"{message} (LMEXP_DATA_DIR={os.environ.get('LMEXP_DATA_DIR')!r})")
    pytest.skip(message)


@pytest.fixture
def data_dir() -> Path:
    return require_data_dir()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A data=text folder of 3,400 PTB lines (66k training words): runs of seconds, for tests
    about the record rather than the model. Use with `data=text data.root=<it>`."""
    folder = tmp_path_factory.mktemp("small_corpus")
    lines = (require_data_dir() / "ptb" / "ptb.train.txt").read_text().splitlines()
    for name, part in (
        ("train", lines[:3000]),
        ("valid", lines[3000:3200]),
        ("test", lines[3200:3400]),
    ):
        (folder / f"{name}.txt").write_text("\n".join(part) + "\n")
    return folder


def small_run_args(corpus: Path) -> list[str]:
    """A tiny GRU on `small_corpus`: 80 steps, evaluated every ~24 and checkpointed every 5;
    about 8 s a run. The fault tests kill, signal and resume it."""
    return [
        "model=gru",
        "optim=adam",
        "model.emb_size=16",
        "model.hidden_size=16",
        "model.dropout=0.3",  # dropout draws random numbers: a resume must restore the RNGs
        "data=text",
        f"data.root={corpus}",
        "trainer.max_epochs=null",
        "trainer.max_steps=80",
        "trainer.eval_every=0.25",
        "trainer.checkpoint_every=5",
        "threads=1",
        "seed=5",
    ]


@pytest.fixture(scope="session")
def small_reference(small_corpus, tmp_path_factory) -> Path:
    """The run of `small_run_args` never stopped: what every killed and resumed copy must equal."""
    run_dir = tmp_path_factory.mktemp("small_reference") / "run"
    args = [*small_run_args(small_corpus), f"hydra.run.dir={run_dir}"]
    started = time.monotonic()
    done = run_module("lmexp.train", args, require_data_dir())
    assert done.returncode == 0, done.stderr[-2000:]
    # the whole process's seconds, start-up included: the fault tests kill at fractions of it
    (run_dir.parent / REFERENCE_SECONDS).write_text(f"{time.monotonic() - started:.3f}")
    return run_dir


REFERENCE_SECONDS = "seconds.txt"


def reference_seconds(reference: Path) -> float:
    """How long `small_reference`'s process ran, launch to exit, on this machine now."""
    return float((reference.parent / REFERENCE_SECONDS).read_text())


@pytest.fixture
def compose():
    """compose(overrides) -> DictConfig of conf/train.yaml, as Hydra would build it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lmexp.config import register_configs

    register_configs()

    def _compose(overrides: list[str] | None = None):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return hydra_compose(config_name="train", overrides=overrides or [])

    return _compose


# Tiny sizes and budget for integration sweeps: every model builds, each job takes seconds.
# A tiny GRU for seconds on `small_corpus` (add data.root=<it>): the tests of the record, the
# errors and the repeats, where the model is beside the point.
TINY_TEXT_GRU = [
    "model=gru",
    "model.emb_size=16",
    "model.hidden_size=16",
    "trainer=smoke",
    "threads=1",
    "data=text",
]

TINY_OVERRIDES = [
    "trainer=smoke",
    "trainer.max_steps=8",
    "model.hidden_size=16",  # every architecture has it; emb_size, num_heads... only some
    "threads=1",
]


def run_module(
    module: str, args: list[str], data_dir: Path, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the repo root with `LMEXP_DATA_DIR=data_dir`."""
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Tiny models trained for a few steps on PTB's lines (the small corpus), shared by the scoring,
# generation and internals tests: {arch: run_dir}. Built once per test process, when asked.
TRAINED_ARCHS = names()  # every registered architecture
TRAINED_SEQ_LEN = 6


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, small_corpus) -> dict[str, Path]:
    from lmexp.config import TrainConfig
    from lmexp.data.schema import DataConfig
    from lmexp.job.runner import run
    from lmexp.models import model_config_from_dict
    from lmexp.training.optim import OptimConfig
    from lmexp.training.schema import TrainerConfig

    data = str(small_corpus)  # PTB's own lines; its validation split is 16x shorter than PTB's
    root = tmp_path_factory.mktemp("trained_runs")
    dirs = {}
    for arch in TRAINED_ARCHS:
        cfg = TrainConfig(
            data=DataConfig(
                name="text",
                root=data,
                download=False,
                batch_size=8,
                seq_len=TRAINED_SEQ_LEN,
                eval_batch_size=40,
            ),
            model=model_config_from_dict(  # keeps the keys this architecture has
                {
                    "name": arch,
                    "emb_size": 16,
                    "hidden_size": 16,
                    "num_layers": 1 if arch == "rnn_attn" else 2,
                    "num_heads": 2,
                    "ff_size": 32,
                    "max_len": 8 if arch == "rnn_attn" else 512,
                }
            ),
            optim=OptimConfig(name="adam", lr=3e-3),
            trainer=TrainerConfig(max_steps=30, eval_every=1.0, progress="off"),
            threads=1,
        )
        run(cfg, root / arch, f"tests: tiny {arch}")
        dirs[arch] = root / arch
    return dirs
