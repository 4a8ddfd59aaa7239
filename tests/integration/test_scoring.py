"""A trained run as a scorer: lmexp.load, the chain rule, normalization, the evaluate CLI.

The runs are tiny models trained for a few steps on PTB's lines (`trained_runs` in conftest.py).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lmexp
from lmexp.data import batchify
from lmexp.inspect.checks import normalization_check, sample_pairs, sanity_check
from lmexp.inspect.evaluate import main as evaluate_main
from lmexp.inspect.scoring import ScoringLM
from lmexp.models.base import LanguageModel
from lmexp.training.evaluation import evaluate
from tests.conftest import TRAINED_ARCHS, TRAINED_SEQ_LEN

pytestmark = pytest.mark.slow

SEQ_LEN = TRAINED_SEQ_LEN
TEXT = "the company said it expects\nprofits to rise in the third quarter\n"


@pytest.mark.parametrize("arch", TRAINED_ARCHS)
def test_log_prob_is_the_sum_of_next_log_probs_and_distributions_normalise(
    trained_runs, arch
) -> None:
    lm = lmexp.load(trained_runs[arch])
    context, continuation = "the company", "said it expects profits to rise"
    manual, prefix = 0.0, lm.tokens(context)
    for token in lm.tokens(continuation):
        dist = lm.next_log_probs(prefix)
        assert dist.shape == (len(lm.vocab),)
        assert math.isclose(float(np.exp(dist.astype(np.float64)).sum()), 1.0, abs_tol=1e-4)
        manual += float(dist[lm.vocab.stoi[token]])
        prefix.append(token)
    assert lm.log_prob(continuation, context) == pytest.approx(manual, abs=1e-3)
    pairs = sample_pairs(lm.tokens(TEXT * 3), 4, SEQ_LEN)
    assert sanity_check(lm, pairs).passed
    assert normalization_check(lm, [p.context for p in pairs]).passed


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_log_prob_matches_training_time_evaluation_on_the_same_text(trained_runs, arch) -> None:
    lm = lmexp.load(trained_runs[arch])
    tokens = lm.tokens(TEXT * 4)  # 4 lines: crosses several seq_len windows
    stream = torch.tensor(lm.vocab.encode([lm.start, *tokens]))
    nll, count = evaluate(lm.model, batchify(stream, 1), SEQ_LEN)
    assert count == len(tokens)
    assert lm.log_prob(tokens) == pytest.approx(-nll, rel=1e-5)


def test_unknown_words_map_to_unk_and_a_missing_checkpoint_is_explained(
    trained_runs, tmp_path
) -> None:
    lm = lmexp.load(trained_runs["gru"], checkpoint="last")
    assert lm.encode("qwertyuiop") == [lm.vocab.stoi["<unk>"]]
    with pytest.raises(FileNotFoundError, match=r"this run has \['best.pt', 'last.pt'\]"):
        lmexp.load(trained_runs["gru"], checkpoint=tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        lmexp.load(tmp_path)


class _Unnormalised(ScoringLM):
    """Broken on purpose: returns raw logits where log-probabilities belong."""

    def _log_probs(self, inputs: list[int]) -> torch.Tensor:
        ids = torch.tensor(inputs).unsqueeze(0)
        with torch.inference_mode():
            logits, _ = self.model(ids, self.model.init_state(1, self.device))
        return logits[0]


class _Peeking(LanguageModel):
    """Broken on purpose: position t sees token t+1 (a leak no causal model has)."""

    def __init__(self, inner: LanguageModel) -> None:
        super().__init__()
        self.inner = inner
        self.output = inner.output

    def init_state(self, batch_size, device):
        return self.inner.init_state(batch_size, device)

    def forward(self, tokens, state):
        logits, state = self.inner(tokens, state)
        upcoming = torch.nn.functional.one_hot(tokens.roll(-1, dims=1), logits.size(-1))
        return logits + 5.0 * upcoming, state


def test_checks_fail_on_deliberately_broken_models(trained_runs) -> None:
    good = lmexp.load(trained_runs["lstm"])
    pairs = sample_pairs(good.tokens(TEXT * 3), 4, SEQ_LEN)
    contexts = [p.context for p in pairs]

    unnormalised = _Unnormalised(good.model, good.vocab, good.config, good.device)
    assert not normalization_check(unnormalised, contexts).passed

    peeking = ScoringLM(_Peeking(good.model), good.vocab, good.config, good.device)
    assert normalization_check(peeking, contexts).passed  # still a distribution...
    assert not sanity_check(peeking, pairs).passed  # ...but not the chain rule's


def test_evaluate_cli_writes_the_char_lm_json_and_matches_the_runs_test_ppl(
    trained_runs, capsys
) -> None:
    run_dir = trained_runs["gru"]
    assert evaluate_main([str(run_dir), "--pairs", "3"]) == 0
    result = json.loads((run_dir / "evaluation" / "test_best.json").read_text())
    assert list(result)[:5] == ["sane", "normalizes", "log_prob", "avg_log_prob", "perplexity"]
    assert result["sane"] and result["normalizes"]
    assert result["avg_log_prob"] == pytest.approx(result["log_prob"] / result["tokens"])
    assert result["perplexity"] == pytest.approx(math.exp(-result["avg_log_prob"]))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result["perplexity"] == pytest.approx(summary["test_ppl"], rel=1e-6)
    assert '"sane": true' in capsys.readouterr().out


def test_evaluate_cli_on_a_text_file(trained_runs, tmp_path) -> None:
    text = tmp_path / "mine.txt"
    text.write_text(TEXT)
    out = tmp_path / "r.json"
    assert (
        evaluate_main([str(trained_runs["transformer"]), "--text", str(text), "--out", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    lm = lmexp.load(trained_runs["transformer"])
    assert result["tokens"] == len(lm.tokens(TEXT))
    assert result["log_prob"] == pytest.approx(lm.log_prob(TEXT), rel=1e-6)


def test_a_character_level_text8_run_scores_and_samples_characters(tmp_path) -> None:
    from lmexp.config import TrainConfig
    from lmexp.data.schema import DataConfig
    from lmexp.inspect.generate import main as generate_main
    from lmexp.job.runner import run
    from lmexp.models import model_config
    from lmexp.training.optim import OptimConfig
    from lmexp.training.schema import TrainerConfig
    from tests.conftest import require_data_dir

    cfg = TrainConfig(
        data=DataConfig(
            name="text8", root=str(require_data_dir() / "text8"), batch_size=16, seq_len=20
        ),
        model=model_config(name="lstm", emb_size=8, hidden_size=16, num_layers=1),
        optim=OptimConfig(name="adam", lr=1e-2),
        trainer=TrainerConfig(max_steps=40, eval_every=1.0, progress="off"),
        threads=1,
    )
    run(cfg, tmp_path / "run", "tests: text8")
    lm = lmexp.load(tmp_path / "run")
    assert lm.tokenizer == "char" and lm.start == " " and len(lm.vocab) == 27
    assert lm.tokens("the cat") == list("the cat")
    text = "anarchism originated as a term of abuse"
    stream = torch.tensor(lm.vocab.encode([lm.start, *text]))
    nll, count = evaluate(lm.model, batchify(stream, 1), 20)
    assert count == len(text) and lm.log_prob(text) == pytest.approx(-nll, rel=1e-5)
    assert sanity_check(lm, sample_pairs(list(text), 3, 20)).passed
    assert generate_main([str(tmp_path / "run"), "--num", "2", "--lengths", "30"]) == 0
    sample = (tmp_path / "run" / "samples" / "t1_len30.txt").read_text().splitlines()[1]
    assert len(sample) == 30  # characters joined as text, not space-separated tokens
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # tokens read: each evaluated split starts with its context, so all 10,000 and 500 count
    assert summary["data_tokens"] == {"train": 90_000, "valid": 10_001, "test": 501}
