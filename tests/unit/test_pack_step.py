"""Packed training's step (lmexp/pack/step.py): K jobs of one shape trained as one batched model
follow the trajectories they follow alone, without dropout and (on the CPU) with it.

Each member is built from its own seed, exactly as the job alone; alone, a member trains through
its model's own forward (the scratch cells' hand-written BPTT, the Transformer as it is) and
draws its dropout masks from the process's generator; packed, all members go through one
vmapped forward and one backward, each drawing its masks from its own generator (taken where the
process's stood after its model was built, as lockstep.Member does), then each clips and steps
with its own optimizer (lmexp's, built from its own learning rate and weight decay). Where the
masks cannot be the job alone's (CUDA), the curves must agree in distribution over seeds.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmexp.models import build_model, model_config_from_dict
from lmexp.models.base import LanguageModel
from lmexp.pack.step import NotPackable, PackedStep, member_state, stack_states
from lmexp.runtime.device import process_stream
from lmexp.training.optim import OptimConfig, build_optimizer

VOCAB, B, T, STEPS, CLIP = 40, 4, 6, 50, 0.5
CPU = torch.device("cpu")
# the packable keys vary across members: seed, dropout rate, learning rate, weight decay, and
# so the optimizer's state
MEMBERS = [
    {"seed": 1, "dropout": 0.0, "optim": OptimConfig(name="adam", lr=3e-3)},
    {"seed": 2, "dropout": 0.3, "optim": OptimConfig(name="adam", lr=1e-2, weight_decay=1e-4)},
    {"seed": 3, "dropout": 0.5, "optim": OptimConfig(name="sgd", lr=0.5)},
]


def _model(name: str, seed: int, **overrides: object) -> LanguageModel:
    torch.manual_seed(seed)
    fields: dict = dict(emb_size=8, hidden_size=8, num_layers=2, num_heads=2, ff_size=16)
    if name == "rnn_attn":  # one RNN layer, attending back over 4 earlier outputs
        fields.update(num_layers=1, max_len=4)
    fields.update({"dropout": 0.0, **overrides})
    return build_model(model_config_from_dict({"name": name, **fields}), VOCAB)


def _batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A member's stream of windows (inputs, targets), (B, T) each: a text with something to
    learn (the next token is the current one plus 1 four times in five, else any token)."""
    gen = torch.Generator().manual_seed(100 + seed)
    noise = torch.randint(0, VOCAB, (B, STEPS * T + 1), generator=gen)
    follow = torch.rand(B, STEPS * T + 1, generator=gen) < 0.8
    stream = noise.clone()
    for t in range(1, stream.size(1)):
        stream[:, t] = torch.where(follow[:, t], (stream[:, t - 1] + 1) % VOCAB, noise[:, t])
    return [
        (stream[:, s * T : (s + 1) * T], stream[:, s * T + 1 : (s + 1) * T + 1])
        for s in range(STEPS)
    ]


def _alone(
    name: str, member: dict, device: torch.device = CPU
) -> tuple[list[float], LanguageModel]:
    """The job alone: its model's own forward, the token-mean NLL, clip, its optimizer."""
    model = _model(name, member["seed"], dropout=member["dropout"]).to(device)
    optimizer = build_optimizer(model.parameters(), member["optim"])
    hidden = model.init_state(B, device)
    losses = []
    for inputs, targets in _batches(member["seed"]):
        inputs, targets = inputs.to(device), targets.to(device)
        hidden = model.detach_state(hidden)
        logits, hidden = model(inputs, hidden)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        losses.append(loss.item())
    return losses, model


def _packed(
    name: str, members: list[dict] = MEMBERS, device: torch.device = CPU, own_streams: bool = True
) -> tuple[list[list[float]], list[LanguageModel]]:
    """The members packed; `own_streams=False` draws every mask from the process's generator
    (the same distribution as alone, other masks)."""
    models, generators = [], []
    for member in members:
        models.append(_model(name, member["seed"], dropout=member["dropout"]).to(device))
        generators.append(process_stream(device) if own_streams else None)
    optimizers = [
        build_optimizer(m.parameters(), c["optim"]) for m, c in zip(models, members, strict=True)
    ]
    step = PackedStep(models)
    active = list(range(len(models)))
    hidden = stack_states([m.init_state(B, device) for m in models])
    streams = [_batches(m["seed"]) for m in members]
    losses: list[list[float]] = [[] for _ in models]
    for s in range(STEPS):
        inputs = torch.stack([stream[s][0] for stream in streams]).to(device)
        targets = torch.stack([stream[s][1] for stream in streams]).to(device)
        hidden = LanguageModel.detach_state(hidden)
        member_losses, hidden = step.forward(active, inputs, targets, hidden, generators)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        member_losses.sum().backward()
        for k, (model, optimizer) in enumerate(zip(models, optimizers, strict=True)):
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            losses[k].append(member_losses[k].item())
    return losses, models


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "transformer", "rnn_attn"])
def test_packed_members_follow_the_trajectories_of_their_jobs_alone(name: str) -> None:
    """Every step's loss within 1e-5 (relative) of the job alone, whatever the member's dropout
    rate (0, 0.3, 0.5: each draws its own masks at its own rate), and after 50 steps the same
    function: the trained models' logits on new text agree to 1e-4. (Weights are compared
    through their function: the attention's key bias, say, has a zero gradient in exact
    arithmetic, and Adam turns the rounding noise in it into steps of its learning rate's size;
    with one thread the Transformer's logits differ by up to 8e-5 after 50 such steps.)"""
    packed_losses, packed_models = _packed(name)
    probe = torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(7))
    for k, member in enumerate(MEMBERS):
        losses, model = _alone(name, member)
        torch.testing.assert_close(packed_losses[k], losses, rtol=1e-5, atol=0)
        state = model.init_state(B, torch.device("cpu"))
        with torch.no_grad():
            alone_logits, _ = model.eval()(probe, state)
            packed_logits, _ = packed_models[k].eval()(probe, state)
        torch.testing.assert_close(packed_logits, alone_logits, rtol=1e-4, atol=1e-4)


# twelve seeds of one cell with dropout 0.5, for tests of the curves' distribution
DROPPED = [
    {"seed": seed, "dropout": 0.5, "optim": OptimConfig(name="adam", lr=0.03)}
    for seed in range(10, 22)
]


def _tail(losses: list[float]) -> float:
    return sum(losses[-10:]) / 10  # the last ten steps' mean training loss


@pytest.mark.parametrize(
    "device",
    [
        pytest.param("cpu", id="cpu-process-generator"),
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
            ],
        ),
    ],
)
def test_with_other_masks_a_member_trains_as_its_job_alone_in_distribution(device: str) -> None:
    """Where a member's masks are not the job alone's (on CUDA, where the job alone draws
    inside a fused kernel; on the CPU, made so by drawing every member's masks from the
    process's generator), its curve must be the same in distribution: over twelve seeds, the
    paired difference of the last ten steps' mean loss, packed minus alone, is consistent
    with zero (paired t-test, p > 0.001), while the same test tells dropout 0.5 from 0.3 and
    from 0 (p < 0.001) in these very runs."""
    from scipy.stats import ttest_rel

    dev = torch.device(device)
    packed, _ = _packed("gru", DROPPED, dev, own_streams=device == "cuda")
    alone = [_tail(_alone("gru", member, dev)[0]) for member in DROPPED]
    assert [_tail(losses) for losses in packed] != alone  # other masks: other numbers
    assert ttest_rel([_tail(losses) for losses in packed], alone).pvalue > 0.001
    for rate in (0.3, 0.0):
        other = [_tail(_alone("gru", {**m, "dropout": rate}, dev)[0]) for m in DROPPED]
        assert ttest_rel(other, alone).pvalue < 0.001, rate


def test_members_start_from_the_weights_their_seeds_give_alone() -> None:
    models = [_model("gru", m["seed"], dropout=0.3) for m in MEMBERS]
    PackedStep(models)  # stacking copies nothing: each member keeps its own tensors
    for member, model in zip(MEMBERS, models, strict=True):
        alone = _model("gru", member["seed"], dropout=0.3)
        for a, b in zip(alone.state_dict().values(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_a_member_that_leaves_does_not_change_the_others() -> None:
    """A diverged member leaves the pack: the others' steps are the same without it."""
    models = [_model("gru", m["seed"]) for m in MEMBERS]
    step = PackedStep(models)
    inputs = torch.stack([_batches(m["seed"])[0][0] for m in MEMBERS])
    targets = torch.stack([_batches(m["seed"])[0][1] for m in MEMBERS])
    hidden = stack_states([m.init_state(B, torch.device("cpu")) for m in models])
    everyone, _ = step.forward([0, 1, 2], inputs, targets, hidden)
    without_1, _ = step.forward([0, 2], inputs[[0, 2]], targets[[0, 2]],
                                member_state(hidden, slice(0, 2)))  # fmt: skip
    torch.testing.assert_close(without_1, everyone[[0, 2]], rtol=1e-6, atol=0)


def test_models_of_different_shapes_or_fused_layers_do_not_pack() -> None:
    with pytest.raises(NotPackable, match="differs in architecture or shapes"):
        PackedStep([_model("gru", 1), _model("gru", 2, hidden_size=16)])
    with pytest.raises(NotPackable, match="model.impl=fused"):
        fused = [_model("lstm", s, impl="fused") for s in (1, 2)]
        PackedStep(fused)
    with pytest.raises(NotPackable, match="attn_impl=sdpa draws attention dropout"):
        PackedStep([_model("transformer", s, attn_impl="sdpa", dropout=0.1) for s in (1, 2)])
    PackedStep([_model("transformer", s, attn_impl="sdpa") for s in (1, 2)])  # no dropout: packs
