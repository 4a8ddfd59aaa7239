"""Every registered model: the shared interface, state carry-over, causality, init and wiring."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lmexp.models import (
    ARCHITECTURES as MODELS,
)
from lmexp.models import (
    LanguageModel,
    State,
    build_model,
    model_config,
    model_config_from_dict,
)
from lmexp.models.attention import MultiHeadAttention, causal_mask, masked_softmax
from lmexp.models.transformer import sinusoidal_positions

VOCAB = 17
B, T = 3, 7
RECURRENT = ["rnn", "gru", "lstm"]
FORBIDDEN = (
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
    nn.Transformer,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)
CPU = torch.device("cpu")


def make(name: str, seed: int = 0, **overrides: object) -> LanguageModel:
    torch.manual_seed(seed)
    fields: dict = dict(emb_size=8, hidden_size=8, num_layers=2, num_heads=2, ff_size=16)
    if name == "rnn_attn":  # CMU 10-601 HW7's model has one RNN layer
        fields["num_layers"] = 1
    if name == "custom":  # a user's own class: the documented example (docs/examples/)
        fields = dict(hidden_size=8, num_layers=2, _target_="bigram.BigramLM")
    fields.update(overrides)
    return build_model(model_config_from_dict({"name": name, **fields}), VOCAB)


def tokens(length: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (B, length), generator=torch.Generator().manual_seed(seed))


def state_parts(state: State) -> tuple[torch.Tensor, ...]:
    if state is None:
        return ()
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def state_shapes(state: State) -> list[tuple[int, ...]]:
    return [tuple(s.shape) for s in state_parts(state)]


def test_registry_names() -> None:
    # the platform's five; a new architecture registers beside them without touching this file
    assert {"gru", "lstm", "rnn", "rnn_attn", "transformer"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes(name: str) -> None:
    model = make(name)
    logits, state = model(tokens(), model.init_state(B, CPU))
    assert logits.shape == (B, T, VOCAB)
    expected = {"rnn": [(2, B, 8)], "gru": [(2, B, 8)], "lstm": [(2, B, 8)] * 2, "transformer": []}
    # rnn_attn: h and the cache of outputs attention reaches back into (empty at the start)
    expected["rnn_attn"] = [(1, B, 8), (B, T, 8)]
    initial = {**expected, "rnn_attn": [(1, B, 8), (B, 0, 8)]}
    if name in expected:  # the state layouts of the five this file knows
        assert state_shapes(state) == expected[name]
        assert state_shapes(model.init_state(B, CPU)) == initial[name]
    assert model.num_params() == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", RECURRENT)
def test_state_carry_over_equals_one_long_run(name: str) -> None:
    model = make(name, dropout=0.5).eval()
    sequence = tokens(length=10)
    whole, whole_state = model(sequence, model.init_state(B, CPU))
    first, state = model(sequence[:, :4], model.init_state(B, CPU))
    second, state = model(sequence[:, 4:], model.detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-6, rtol=0)
    for carried, direct in zip(state_parts(state), state_parts(whole_state), strict=True):
        torch.testing.assert_close(carried, direct, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", RECURRENT)
def test_init_state_is_zeros(name: str) -> None:
    assert all(torch.count_nonzero(s) == 0 for s in state_parts(make(name).init_state(B, CPU)))


def test_recurrent_state_is_used() -> None:
    model = make("gru").eval()
    sequence = tokens()
    from_zero, state = model(sequence, model.init_state(B, CPU))
    from_state, _ = model(sequence, state)
    assert not torch.allclose(from_zero, from_state)


def test_transformer_is_causal() -> None:
    model = make("transformer").eval()
    original = tokens()
    changed = original.clone()
    cut = 3
    changed[:, cut + 1 :] = (changed[:, cut + 1 :] + 1) % VOCAB
    before, _ = model(original, None)
    after, _ = model(changed, None)
    torch.testing.assert_close(after[:, : cut + 1], before[:, : cut + 1], atol=0, rtol=0)
    assert not torch.allclose(after[:, cut + 1 :], before[:, cut + 1 :])


def test_sinusoidal_positions() -> None:
    table = sinusoidal_positions(max_len=3, d_model=4)
    # PE[p, 2i] = sin(p / 10000^(2i/4)), PE[p, 2i+1] = cos(...): frequencies 1 and 1/100
    expected = [[math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)] for p in range(3)]
    torch.testing.assert_close(table, torch.tensor(expected), atol=1e-6, rtol=0)


def test_transformer_sees_positions() -> None:
    model = make("transformer").eval()
    logits, _ = model(torch.full((1, 4), 5), None)  # without positions every row would be equal
    assert not torch.allclose(logits[0, 0], logits[0, 3])


def test_transformer_rejects_windows_longer_than_max_len() -> None:
    model = make("transformer", max_len=5)
    with pytest.raises(ValueError, match="max_len"):
        model(tokens(length=6), None)


def test_causal_mask() -> None:
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3, CPU), expected)


def test_masked_softmax_matches_exp_times_mask_form() -> None:
    scores = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    mask = causal_mask(5, CPU)
    masked = torch.exp(scores) * mask  # eq. (13)
    expected = masked / masked.sum(dim=-1, keepdim=True)  # eq. (14)
    torch.testing.assert_close(masked_softmax(scores, mask), expected, atol=1e-6, rtol=1e-6)


def test_attention_output_shape_and_no_future_leak() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(hidden_size=8, num_heads=4).eval()
    x = torch.randn(B, 5, 8)
    y = attention(x, causal_mask(5, CPU))
    assert y.shape == (B, 5, 8)
    x_future = x.clone()
    x_future[:, 2:] += 1.0
    torch.testing.assert_close(attention(x_future, causal_mask(5, CPU))[:, :2], y[:, :2])


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_init_ranges(name: str) -> None:
    model = make(name, hidden_size=16, emb_size=16)
    assert model.embedding.weight.abs().max() <= 0.1
    assert model.output.weight.abs().max() <= 0.1
    assert torch.count_nonzero(model.output.bias) == 0
    bound = 1 / math.sqrt(16)
    for layer in model.layers:
        for param_name, param in layer.named_parameters():
            assert param.abs().max() <= bound, param_name


@pytest.mark.parametrize("impl", ["scratch", "fused"])
def test_an_init_range_draws_every_parameter_from_it_as_zaremba_2014(impl: str) -> None:
    """model.init_range=0.05: each weight and bias U(±0.05), the output bias too; the fused
    LSTM's duplicate b_hh stays 0 (one bias per gate, as the scratch cells)."""
    model = make("lstm", hidden_size=64, emb_size=64, impl=impl, init_range=0.05)
    for param_name, param in model.named_parameters():
        if param_name.endswith(("bias_hh_l0", "bias_hh_l1")):
            assert torch.count_nonzero(param) == 0, param_name
            continue
        assert param.abs().max() <= 0.05, param_name
        assert param.abs().max() > 0.045, param_name  # spread over the range, not left at 0
        assert abs(param.mean().item()) < 0.01, param_name  # centred, as a uniform draw is
    with pytest.raises(ValueError, match="init_range"):
        make("lstm", init_range=-0.1)


def test_transformer_matrices_are_xavier_uniform() -> None:
    model = make("transformer", hidden_size=16, ff_size=32, num_heads=4)
    for param_name, param in model.named_parameters():
        if param.dim() > 1 and "qkv" not in param_name:
            fan_out, fan_in = param.shape
            assert param.abs().max() <= math.sqrt(6 / (fan_in + fan_out)), param_name


def test_transformer_query_key_value_are_xavier_per_matrix_as_the_course_code() -> None:
    # the course code's W_Q, W_K, W_V are (H, H) each: bound √(6 / 2H) = 0.2165 at H = 64;
    # Xavier over the fused (3H, H) would give √(6 / 4H) = 0.1531
    model = make("transformer", hidden_size=64, ff_size=64, num_heads=4)
    bound, fused = math.sqrt(6 / 128), math.sqrt(6 / 256)
    assert (round(bound, 4), round(fused, 4)) == (0.2165, 0.1531)
    for block in model.blocks:
        for matrix in block.attention.qkv.weight.detach().chunk(3, dim=0):  # (64, 64) each
            assert fused < matrix.abs().max() <= bound  # 4,096 draws reach close to the bound
            assert matrix.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_transformer_attention_can_start_as_the_attention_code_says() -> None:
    """model.attn_init=uniform: the four attention projections U(±1/√H), weights and biases
    (IFT6135 A2's attention class, before make_model's Xavier); the rest stays Xavier."""
    model = make("transformer", hidden_size=64, ff_size=64, num_heads=4, attn_init="uniform")
    bound = 1 / math.sqrt(64)  # 0.125, below Xavier's 0.2165 for a (64, 64) matrix
    for block in model.blocks:
        for param in (block.attention.qkv.weight, block.attention.out.weight):
            assert bound * 0.95 < param.abs().max() <= bound
            assert param.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    square = [  # the feed-forward's (64, 64) matrices: still Xavier, whose bound is wider
        p for n, p in model.named_parameters() if ".attention." not in n and p.shape == (64, 64)
    ]
    assert square and all(p.abs().max() > bound for p in square)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dropout_is_identity_in_eval_mode(name: str) -> None:
    model = make(name, dropout=0.5).eval()
    sequence = tokens()
    first, _ = model(sequence, model.init_state(B, CPU))
    second, _ = model(sequence, model.init_state(B, CPU))
    assert torch.equal(first, second)
    model.train()
    third, _ = model(sequence, model.init_state(B, CPU))
    assert not torch.equal(first, third)


@pytest.mark.parametrize("name", RECURRENT)
def test_dropout_only_between_layers(name: str) -> None:
    """Once on the embeddings and once on each layer's outputs; never inside the time loop."""
    model = make(name, dropout=0.5, num_layers=3)
    calls: list[tuple[int, ...]] = []
    model.dropout.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape))
    model(tokens(), model.init_state(B, CPU))
    assert calls == [(B, T, 8)] * 4


@pytest.mark.parametrize("name", RECURRENT)
def test_detach_state_cuts_the_graph(name: str) -> None:
    model = make(name)
    _, state = model(tokens(), model.init_state(B, CPU))
    assert all(p.requires_grad for p in state_parts(state))
    detached = state_parts(model.detach_state(state))
    assert len(detached) == len(state_parts(state))
    assert all(not p.requires_grad and p.grad_fn is None for p in detached)
    assert LanguageModel.detach_state(None) is None


def test_build_model_rejects_unknown_name() -> None:
    cfg = model_config(name="gru")
    cfg.name = "mamba"  # bypasses the config's own check: build_model must guard on its own
    with pytest.raises(ValueError, match=r"unknown model 'mamba'; choose from \[.*'gru', .*'lstm'"):
        build_model(cfg, VOCAB)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_tie_weights_shares_one_parameter(name: str) -> None:
    model = make(name, tie_weights=True)
    assert model.output.weight is model.embedding.weight
    untied = make(name)
    assert model.num_params() == untied.num_params() - VOCAB * 8
    logits, _ = model(tokens(), model.init_state(B, CPU))
    logits.sum().backward()
    assert model.embedding.weight.grad is not None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_builtin_recurrent_or_attention_modules(name: str) -> None:
    for module in make(name).modules():
        assert not isinstance(module, FORBIDDEN), type(module).__name__


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradients_are_finite_for_every_parameter(name: str) -> None:
    model = make(name, dropout=0.1).train()
    sequence = tokens(length=T + 1)
    logits, _ = model(sequence[:, :-1], model.init_state(B, CPU))
    loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), sequence[:, 1:].reshape(-1))
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name


def test_rnn_nonlinearity_is_configurable() -> None:
    sequence = tokens()
    tanh_logits, _ = make("rnn")(sequence, make("rnn").init_state(B, CPU))
    relu_model = make("rnn", nonlinearity="relu")
    relu_logits, _ = relu_model(sequence, relu_model.init_state(B, CPU))
    assert relu_model.layers[0].nonlinearity == "relu"
    assert not torch.allclose(tanh_logits, relu_logits)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_runs_on_cuda(name: str) -> None:
    device = torch.device("cuda")
    model = make(name).to(device)
    logits, state = model(tokens().to(device), model.init_state(B, device))
    assert logits.device.type == "cuda"
    assert all(s.device.type == "cuda" for s in state_parts(state))


def test_post_layernorm_blocks_end_normalised_and_drop_the_final_norm() -> None:
    post = make("transformer", hidden_size=16, ff_size=32, num_heads=4, norm="post").eval()
    assert isinstance(post.final_norm, torch.nn.Identity)
    x = torch.randn(B, 5, 16) * 3 + 2
    out = post.blocks[0](x, None)  # norm(x + ff(x)) of norm(x + attn(x)): LayerNorm'd rows
    assert out.mean(-1).abs().max() < 1e-5
    assert out.std(-1, unbiased=False).sub(1).abs().max() < 1e-3
    pre = make("transformer", hidden_size=16, ff_size=32, num_heads=4)
    assert isinstance(pre.final_norm, torch.nn.LayerNorm)  # the scaffold's, unchanged


def test_learned_positions_are_a_trained_embedding_added_to_the_tokens() -> None:
    model = make("transformer", hidden_size=16, ff_size=32, num_heads=4, positions="learned")
    model.eval()
    assert model.position_embedding.weight.shape == (model.positions.shape[0], 16)
    sequence = tokens()
    before, _ = model(sequence, None)
    (before.sum()).backward()
    assert model.position_embedding.weight.grad[: sequence.size(1)].abs().sum() > 0  # trained
    with torch.no_grad():
        model.position_embedding.weight[0] += 1.0
    after, _ = model(sequence, None)
    assert not torch.allclose(before, after)  # position 0's vector enters the output
    with pytest.raises(ValueError, match="model.positions='rotary'"):
        make("transformer", positions="rotary")
