"""Generation, per-time-step loss and gradient flow on tiny trained runs, and the report section.

The runs are tiny models trained for a few steps on PTB's lines (`trained_runs` in conftest.py).
"""

from __future__ import annotations

import csv
import math

import pytest
import torch

import lmexp
from analysis.internals import plot_internals
from analysis.report import build_report
from lmexp.inspect.generate import Sampling, generate
from lmexp.inspect.generate import main as generate_main
from lmexp.inspect.internals import gradient_flow, timestep_loss
from lmexp.inspect.internals import main as internals_main
from lmexp.models.base import LanguageModel
from tests.conftest import TRAINED_ARCHS, TRAINED_SEQ_LEN

pytestmark = pytest.mark.slow


def _read(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("arch", TRAINED_ARCHS)
def test_greedy_is_deterministic_and_sampling_reproducible_under_a_seed(trained_runs, arch):
    lm = lmexp.load(trained_runs[arch])
    prompt = [[lm.vocab.stoi["<eos>"], *lm.encode("the company")]] * 3
    length = 2 * TRAINED_SEQ_LEN + 3  # longer than the Transformer's trained context

    def run(sampling, seed):
        return generate(lm, prompt, length, sampling, torch.Generator().manual_seed(seed))

    greedy = run(Sampling(temperature=0), 0)
    assert greedy == run(Sampling(temperature=0), 1)  # no randomness at all
    assert greedy[0] == greedy[1] == greedy[2] and len(greedy[0]) == length
    sampled = run(Sampling(temperature=1.0), 7)
    assert sampled == run(Sampling(temperature=1.0), 7)
    assert all(0 <= t < len(lm.vocab) for row in sampled for t in row)


def test_greedy_generation_picks_the_argmax_of_next_log_probs(trained_runs):
    lm = lmexp.load(trained_runs["transformer"])
    prompt = lm.encode("the company said")
    out = generate(lm, [[lm.vocab.stoi["<eos>"], *prompt]], 4, Sampling(0), torch.Generator())
    context = list(prompt)
    for token in out[0]:
        # The Transformer decodes from a sliding window of its last seq_len tokens.
        window = ([lm.vocab.stoi["<eos>"]] + context)[-TRAINED_SEQ_LEN:]
        logits, _ = lm.model(torch.tensor([window]), None)
        assert token == int(logits[0, -1].argmax())
        context.append(token)


def test_generate_cli_writes_samples_of_seq_len_and_twice_it(trained_runs):
    run_dir = trained_runs["gru"]
    assert generate_main([str(run_dir), "--num", "4", "--temperature", "0.8", "--seed", "3"]) == 0
    for length in (TRAINED_SEQ_LEN, 2 * TRAINED_SEQ_LEN):
        lines = (run_dir / "samples" / f"t0.8_len{length}.txt").read_text().splitlines()
        assert lines[0].startswith("#") and "seed=3" in lines[0]
        assert len(lines) == 5 and all(len(line.split()) == length for line in lines[1:])
    short, long = (
        (run_dir / "samples" / f"t0.8_len{n}.txt").read_text().splitlines()[1:]
        for n in (TRAINED_SEQ_LEN, 2 * TRAINED_SEQ_LEN)
    )
    # independent samples: no double-length one begins with its single-length twin
    for one, two in zip(short, long, strict=True):
        assert two.split()[:TRAINED_SEQ_LEN] != one.split()
    first = (run_dir / "samples" / f"t0.8_len{TRAINED_SEQ_LEN}.txt").read_text()
    assert generate_main([str(run_dir), "--num", "4", "--temperature", "0.8", "--seed", "3"]) == 0
    assert (run_dir / "samples" / f"t0.8_len{TRAINED_SEQ_LEN}.txt").read_text() == first
    assert generate_main([str(run_dir), "--top-p", "2"]) == 2  # refused before any work


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_timestep_losses_average_to_the_validation_loss(trained_runs, arch):
    from lmexp.data import batchify, load_corpus
    from lmexp.training.evaluation import evaluate

    lm = lmexp.load(trained_runs[arch])
    streams = batchify(load_corpus(lm.config.data).valid, 40)
    rows = timestep_loss(lm.model, streams, TRAINED_SEQ_LEN, state="carried")
    assert [r["t"] for r in rows] == list(range(TRAINED_SEQ_LEN))
    mean = sum(r["loss"] * r["tokens"] for r in rows) / sum(r["tokens"] for r in rows)
    nll, count = evaluate(lm.model, streams, TRAINED_SEQ_LEN)
    assert mean == pytest.approx(nll / count, rel=1e-6)


class _DetachedEveryStep(LanguageModel):
    """A recurrent model whose incoming state is cut from the graph at every call."""

    def __init__(self, inner: LanguageModel) -> None:
        super().__init__()
        self.inner, self.output = inner, inner.output

    def init_state(self, batch_size, device):
        return self.inner.init_state(batch_size, device)

    def forward(self, tokens, state):
        return self.inner(tokens, self.detach_state(state))


@pytest.mark.parametrize("arch", TRAINED_ARCHS)
def test_gradient_flow_reaches_back_through_time_unless_the_state_is_cut(trained_runs, arch):
    lm = lmexp.load(trained_runs[arch])
    inputs = torch.randint(len(lm.vocab), (8, TRAINED_SEQ_LEN))
    targets = torch.randint(len(lm.vocab), (8, TRAINED_SEQ_LEN))
    rows = gradient_flow(lm.model, inputs, targets)  # the assignment's: h_0..h_{T-1}
    assert [r["t"] for r in rows] == list(range(TRAINED_SEQ_LEN))
    assert min(r["scaled"] for r in rows) == 0.0 and max(r["scaled"] for r in rows) == 1.0
    assert all(r["grad_norm"] > 0 for r in rows)  # every earlier state feeds L_T
    if arch != "transformer":
        cut = _DetachedEveryStep(lm.model)
        # every h_t reaches L_T only through a cut: no gradient at all
        assert all(r["grad_norm"] == 0 for r in gradient_flow(cut, inputs, targets))
        # the states after each token: only the last one feeds L_T directly
        after = gradient_flow(cut, inputs, targets, definition="per-sequence", mode="eval")
        assert all(r["grad_norm"] == 0 for r in after[:-1]) and after[-1]["grad_norm"] > 0


def test_internals_cli_and_the_report_section(trained_runs, tmp_path):
    dirs = [trained_runs[a] for a in TRAINED_ARCHS]
    out = tmp_path / "plots"
    assert internals_main([*map(str, dirs)]) == 0
    plot_internals(dirs, out)  # the report's two comparison plots, alone
    for run_dir in dirs:
        losses = _read(run_dir / "internals" / "timestep_loss.csv")
        assert len(losses) == TRAINED_SEQ_LEN and all(
            math.isfinite(float(r["loss"])) for r in losses
        )
        assert len(_read(run_dir / "internals" / "grad_flow.csv")) == TRAINED_SEQ_LEN
    assert {p.name for p in out.iterdir()} >= {
        "internals-timestep-loss.png",
        "internals-grad-flow.pdf",
    }
    assert generate_main([str(trained_runs["lstm"]), "--num", "2", "--lengths", "5"]) == 0
    written = build_report(dirs, tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert "## Inside the models" in page and "Gradient flow through time" in page
    assert "## Appendix: generated text" in page and "t1_len5" in page
    assert any(p.name == "internals-grad-flow.png" for p in written)


def test_samples_during_training_leave_the_training_itself_unchanged(
    tmp_path, data_dir, small_corpus, small_reference
):
    from tests.conftest import run_module, small_run_args
    from tests.integration.test_resume import _ppl_columns

    run_dir = tmp_path / "run"
    args = [*small_run_args(small_corpus), "trainer.sample_every=0.25", f"hydra.run.dir={run_dir}"]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    # 95 steps an epoch, evaluated at steps 24, 48, 71 and 80: text at the first evaluation
    # at or after each quarter epoch (0.2526, 0.5053, then 0.8421, as 71 is epoch 0.747)
    written = sorted(p.name for p in (run_dir / "samples").glob("during_epoch*.txt"))
    assert written == [f"during_epoch{e}.txt" for e in ("0.2526", "0.5053", "0.8421")]
    lines = (run_dir / "samples" / "during_epoch0.5053.txt").read_text().splitlines()
    # LING 574's: 10 samples from the best model so far (here the newest evaluation's, 0.5053)
    assert lines[0].startswith("# during training, epoch 0.5053, best (epoch 0.5053) weights")
    assert len(lines) == 1 + 10 and "temperature=1.0" in lines[0]
    assert "samples at epoch 0.5053" in (run_dir / "train.log").read_text()
    # drawn from their own generator and a copy of the model: the run is the one without them
    assert _ppl_columns(run_dir) == _ppl_columns(small_reference)
    # the earlier behaviour, and a temperature: 5 from the current weights at 0.7
    other = tmp_path / "current"
    args = [*args[:-1], "trainer.sample_from=current", "trainer.sample_count=5"]
    args += ["trainer.sample_temperature=0.7", f"hydra.run.dir={other}"]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (other / "samples" / "during_epoch0.5053.txt").read_text().splitlines()
    assert lines[0].startswith("# during training, epoch 0.5053, current weights")
    assert "temperature=0.7" in lines[0] and len(lines) == 1 + 5
