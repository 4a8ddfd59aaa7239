"""scratch vs fused recurrent layers and scratch vs sdpa attention compute the same function.

With the scratch weights mapped onto `nn.RNN`/`nn.LSTM`/`nn.GRU` (`copy_from_scratch`), outputs,
final states and every gradient agree in fp32 to ~1e-5; so do the two attention paths.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lmexp.models import ArchConfig, build_model, model_config
from lmexp.models.fused import FusedRecurrentLM, copy_from_scratch
from lmexp.models.recurrent import RecurrentLM

VOCAB, BATCH, LENGTH = 50, 3, 7
TOL = {"atol": 1e-5, "rtol": 1e-5}

CASES = {
    "rnn_tanh": {"name": "rnn", "nonlinearity": "tanh"},
    "rnn_relu": {"name": "rnn", "nonlinearity": "relu"},
    "lstm": {"name": "lstm"},
    "gru_reset_after": {"name": "gru", "gru_variant": "reset_after"},
}


def _config(**kw) -> ArchConfig:
    return model_config(emb_size=6, hidden_size=8, num_layers=2, **kw)


def _loss_and_grads(model, tokens, state, targets):
    model.zero_grad()
    logits, final = model(tokens, state)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    final_tensors = () if final is None else final if isinstance(final, tuple) else (final,)
    # Gradients must also flow correctly into the carried state, not only into the logits.
    (loss + sum(f.square().sum() for f in final_tensors)).backward()
    return logits, final


def _grads_as_model(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose parameters hold its gradients (to push them through a mapping)."""
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for param, source in zip(clone.parameters(), model.parameters(), strict=True):
            param.copy_(source.grad)
    return clone


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_matches_scratch_outputs_states_and_gradients(case: str) -> None:
    torch.manual_seed(0)
    scratch = build_model(_config(**CASES[case]), VOCAB)
    fused = build_model(_config(**CASES[case], impl="fused"), VOCAB)
    assert isinstance(scratch, RecurrentLM) and isinstance(fused, FusedRecurrentLM)
    copy_from_scratch(scratch, fused)
    tokens = torch.randint(VOCAB, (BATCH, LENGTH))
    targets = torch.randint(VOCAB, (BATCH, LENGTH))
    start = scratch.init_state(BATCH, torch.device("cpu"))
    start = (
        tuple(torch.randn_like(s) for s in start)
        if isinstance(start, tuple)
        else torch.randn_like(start)
    )  # a non-zero carried state, as in the middle of a stream

    logits_s, final_s = _loss_and_grads(scratch, tokens, start, targets)
    logits_f, final_f = _loss_and_grads(fused, tokens, start, targets)
    torch.testing.assert_close(logits_f, logits_s, **TOL)
    torch.testing.assert_close(final_f, final_s, **TOL)

    expected = _grads_as_model(fused)  # shapes and names of the fused model
    copy_from_scratch(_grads_as_model(scratch), expected)  # scratch gradients, mapped across
    for (name, param), want in zip(fused.named_parameters(), expected.parameters(), strict=True):
        # b_hh duplicates b_ih (one bias per gate in scratch): its gradient is masked to 0 so
        # it stays 0; only the GRU candidate's b_hh (inside r ⊙ (...)) is a parameter of its
        # own, and the mapping carries its gradient like any other.
        torch.testing.assert_close(param.grad, want, **TOL, msg=f"gradient of {name}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_trains_like_scratch(case: str) -> None:
    """Same weights, same batches, SGD: the two stay together step after step."""
    torch.manual_seed(0)
    scratch = build_model(_config(**CASES[case]), VOCAB)
    fused = build_model(_config(**CASES[case], impl="fused"), VOCAB)
    copy_from_scratch(scratch, fused)
    assert fused.num_params() == scratch.num_params()
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (scratch, fused)]
    for _ in range(5):
        tokens, targets = torch.randint(VOCAB, (2, BATCH, LENGTH))
        for model, opt in zip((scratch, fused), opts, strict=True):
            state = model.init_state(BATCH, torch.device("cpu"))
            opt.zero_grad()
            _loss_and_grads(model, tokens, state, targets)
            opt.step()
    mapped = copy.deepcopy(fused)
    copy_from_scratch(scratch, mapped)  # where scratch's weights say fused should be
    for (name, a), b in zip(fused.named_parameters(), mapped.parameters(), strict=True):
        torch.testing.assert_close(a, b, **TOL, msg=f"{name} after 5 SGD steps")


def test_fused_gru_refuses_the_seeds_reset_before_variant() -> None:
    with pytest.raises(ValueError, match="set model.gru_variant=reset_after"):
        _config(name="gru", impl="fused")


def test_reset_after_is_a_different_model_from_the_seeds_gru() -> None:
    torch.manual_seed(0)
    before = build_model(_config(name="gru"), VOCAB)
    after = build_model(_config(name="gru", gru_variant="reset_after"), VOCAB)
    assert before.num_params() + 2 * 8 == after.num_params()  # one candidate b_hh per layer


def test_sdpa_attention_matches_the_seeds_masked_softmax() -> None:
    torch.manual_seed(0)
    kw = {"name": "transformer", "hidden_size": 16, "num_heads": 4, "ff_size": 32}
    scratch = build_model(model_config(**kw), VOCAB)
    sdpa = build_model(model_config(**kw, attn_impl="sdpa"), VOCAB)
    sdpa.load_state_dict(scratch.state_dict())  # the same parameters: only the kernel differs
    tokens = torch.randint(VOCAB, (BATCH, LENGTH))
    targets = torch.randint(VOCAB, (BATCH, LENGTH))
    logits_s, _ = _loss_and_grads(scratch, tokens, None, targets)
    logits_f, _ = _loss_and_grads(sdpa, tokens, None, targets)
    torch.testing.assert_close(logits_f, logits_s, **TOL)
    for (name, a), b in zip(sdpa.named_parameters(), scratch.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, **TOL, msg=f"gradient of {name}")


def test_sdpa_is_causal() -> None:
    """Changing a later token must not change an earlier position's logits."""
    torch.manual_seed(0)
    cfg = model_config(name="transformer", hidden_size=16, num_heads=4, ff_size=32)
    model = build_model(dataclasses.replace(cfg, attn_impl="sdpa"), VOCAB).eval()
    tokens = torch.randint(VOCAB, (1, LENGTH))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % VOCAB
    with torch.no_grad():
        a, _ = model(tokens, None)
        b, _ = model(changed, None)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])
