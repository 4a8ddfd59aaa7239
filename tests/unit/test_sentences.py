"""Sentence mode: padded batches, the loss mask (LING 574 HW7 Q1), bucketing, and perplexity that
padding does not change."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lmexp.data import SentenceBatches, Vocab
from lmexp.data.sentences import pad_batch, split_sentences
from lmexp.models import build_model, model_config
from lmexp.training.evaluation import evaluate
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer

SENTENCES = ["<s> the cat sits </s>", "<s> the model reads the sentence </s>"]
VOCAB = Vocab(["<pad>", "<s>", "</s>", "the", "cat", "sits", "model", "reads", "sentence"])


def _ids(sentence: str) -> torch.Tensor:
    return torch.tensor(VOCAB.encode(sentence.split()))


def test_ling574_q1_inputs_targets_and_mask() -> None:
    batch = pad_batch([_ids(s) for s in SENTENCES], pad_id=VOCAB.stoi["<pad>"])
    decode = [VOCAB.decode(row) for row in batch.inputs]
    assert decode == [
        ["<s>", "the", "cat", "sits", "</s>", "<pad>"],
        ["<s>", "the", "model", "reads", "the", "sentence"],
    ]
    assert [VOCAB.decode(row) for row in batch.targets] == [
        ["the", "cat", "sits", "</s>", "<pad>", "<pad>"],
        ["the", "model", "reads", "the", "sentence", "</s>"],
    ]
    # 1 where the target is real (the homework's answer, 1 1 1 1 1 0, marks the non-pad inputs)
    assert batch.mask.int().tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert batch.num_tokens == 10


def test_ling574_q1_masked_loss_matrix_and_its_mean() -> None:
    losses = torch.tensor([[0.1, 0.3, 0.2, 0.4, 0.7, 0.5], [0.2, 0.6, 0.1, 0.8, 0.9, 0.4]])
    batch = pad_batch([_ids(s) for s in SENTENCES], pad_id=0)
    masked = losses * batch.mask
    # the homework's masked loss matrix: the two <pad> targets of the first row are zeroed
    expected = torch.tensor([[0.1, 0.3, 0.2, 0.4, 0.0, 0.0], [0.2, 0.6, 0.1, 0.8, 0.9, 0.4]])
    assert torch.allclose(masked, expected)
    # the mean divides by the 10 real tokens, not by the 12 cells: (1.0 + 3.0) / 10
    assert (masked.sum() / batch.num_tokens).item() == pytest.approx(0.4)


def test_split_sentences_cuts_at_each_start_and_caps_length() -> None:
    stream = torch.tensor(VOCAB.encode(" ".join(SENTENCES).split()))
    whole, cut = split_sentences(stream, VOCAB.stoi["<s>"], max_len=10)
    assert [VOCAB.decode(s) for s in whole] == [s.split() for s in SENTENCES] and cut == 0
    capped, cut = split_sentences(stream, VOCAB.stoi["<s>"], max_len=4)
    assert [len(s) for s in capped] == [5, 5] and cut == 1
    with pytest.raises(ValueError, match="starts every sentence with <s>"):
        split_sentences(stream[1:], VOCAB.stoi["<s>"], max_len=10)


def _random_sentences(n: int, vocab: int = 30, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 14, (n,), generator=g).tolist()
    # ids 0..2 are <pad>, <s>, </s>
    return [
        torch.tensor([1, *torch.randint(3, vocab, (k,), generator=g).tolist(), 2]) for k in lengths
    ]


def test_training_epochs_cover_every_sentence_once_and_replay_from_seed_and_epoch() -> None:
    sentences = _random_sentences(103)
    batches = SentenceBatches(sentences, batch_size=8, pad_id=0, shuffle_seed=5)
    plan = batches.plan(epoch=0)
    assert len(plan) == len(batches) == 13
    assert sorted(torch.cat(plan).tolist()) == list(range(103))
    assert [p.tolist() for p in batches.plan(0)] == [p.tolist() for p in plan]
    assert [p.tolist() for p in batches.plan(1)] != [p.tolist() for p in plan]
    resumed = list(batches.iterate(start=4, epoch=0))
    full = list(batches.iterate(epoch=0))
    assert len(resumed) == 9 and torch.equal(resumed[0].inputs, full[4].inputs)
    assert sum(b.num_tokens for b in full) == batches.count_targets()


def test_bucketing_pads_less_than_batches_of_random_lengths() -> None:
    sentences = _random_sentences(400)
    bucketed = SentenceBatches(sentences, batch_size=16, pad_id=0, shuffle_seed=1)
    cells = sum(b.inputs.numel() for b in bucketed.iterate(epoch=0))
    chunks = torch.randperm(400, generator=torch.Generator().manual_seed(1)).split(16)
    random_cells = sum(pad_batch([sentences[i] for i in c], 0).inputs.numel() for c in chunks)
    real = bucketed.count_targets()
    assert cells - real < 0.25 * (random_cells - real)


MODELS = [
    model_config(name="rnn", emb_size=12, hidden_size=12, num_layers=2),
    model_config(name="gru", emb_size=12, hidden_size=12, num_layers=1),
    model_config(name="lstm", emb_size=12, hidden_size=12, num_layers=2),
    model_config(name="lstm", emb_size=12, hidden_size=12, num_layers=2, impl="fused"),
    model_config(name="transformer", hidden_size=12, num_heads=2, ff_size=24, num_layers=2),
    model_config(name="rnn_attn", emb_size=12, hidden_size=12, num_layers=1, d_k=8, d_v=6),
]


@pytest.mark.parametrize("cfg", MODELS, ids=lambda c: f"{c.name}-{getattr(c, 'impl', 'scratch')}")
def test_perplexity_of_padded_batches_equals_sentences_scored_one_by_one(cfg) -> None:
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=30)
    sentences = _random_sentences(21)
    padded = evaluate(model, SentenceBatches(sentences, batch_size=8, pad_id=0))
    alone = evaluate(model, SentenceBatches(sentences, batch_size=1, pad_id=0))
    assert padded[1] == alone[1] == sum(len(s) - 1 for s in sentences)
    assert padded[0] == pytest.approx(alone[0], rel=1e-5)
    # and by hand, one sentence at a time from a fresh state
    by_hand = 0.0
    with torch.inference_mode():
        model.eval()
        for s in sentences:
            logits, _ = model(s[:-1].unsqueeze(0), model.init_state(1, torch.device("cpu")))
            by_hand += F.cross_entropy(logits[0], s[1:], reduction="sum").item()
    assert padded[0] == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("cfg", [MODELS[2], MODELS[4], MODELS[5]], ids=lambda c: c.name)
def test_a_padded_training_step_follows_the_gradient_of_the_real_tokens_only(cfg) -> None:
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=30)
    reference = copy.deepcopy(model)
    sentences = _random_sentences(6)
    batch = pad_batch(sentences, pad_id=0)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.5),
        lambda e: 0.5,
        SentenceBatches(sentences, 6, 0, shuffle_seed=0),
        SentenceBatches(sentences, 6, 0),
        None,
        TrainerConfig(max_steps=1, clip_norm=None, progress="off"),
        on_eval=lambda point: None,
    )
    state = model.init_state(len(sentences), torch.device("cpu"))
    trainer.train_step(batch.inputs, batch.targets, state, batch.mask, batch.num_tokens)
    # the same update from the sentences unpadded, each from a fresh state
    total = sum(
        F.cross_entropy(
            reference(s[:-1].unsqueeze(0), reference.init_state(1, torch.device("cpu")))[0][0],
            s[1:],
            reduction="sum",
        )
        for s in sentences
    )
    (total / batch.num_tokens).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.5 * p.grad
    expected = reference.state_dict().values()
    for (name, got), want in zip(model.state_dict().items(), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-5), name


def test_sentence_training_resumed_mid_epoch_replays_the_same_batches() -> None:
    sentences = _random_sentences(40)
    cfg = TrainerConfig(max_epochs=2, eval_every=0.5, checkpoint_every=3, progress="off")

    def trainer(rows: list, snaps: list) -> Trainer:
        torch.manual_seed(0)
        model = build_model(MODELS[0], vocab_size=30)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

        def save(t: Trainer) -> None:
            snaps.append((t.snapshot(), copy.deepcopy(model.state_dict()), optimizer))

        return Trainer(
            model,
            optimizer,
            lambda e: 0.5,
            SentenceBatches(sentences, 4, 0, shuffle_seed=7),
            SentenceBatches(sentences, 8, 0),
            None,
            cfg,
            lambda point: rows.append(point.row),
            save,
        )

    rows: list = []
    snaps: list = []
    trainer(rows, snaps).fit()
    snapshot, weights, _ = next(s for s in snaps if s[0]["fit"]["step"] == 12)  # epoch 2, batch 2
    assert snapshot["progress"]["step_in_epoch"] == 2
    again: list = []
    resumed = trainer(again, [])
    resumed.model.load_state_dict(weights)  # plain SGD keeps no optimizer state
    resumed.restore(snapshot)
    resumed.fit()
    keys = ("step", "sequences", "tokens", "train_loss", "val_loss")
    later = [r for r in rows if r["step"] > 12]
    assert [[r[k] for k in keys] for r in again] == [[r[k] for k in keys] for r in later]
    assert rows[-1]["sequences"] == 80 and rows[-1]["tokens"] == 2 * sum(
        len(s) - 1 for s in sentences
    )


def test_per_position_loss_of_sentences_counts_real_tokens_and_sums_to_the_evaluation() -> None:
    from lmexp.inspect.internals import timestep_loss

    torch.manual_seed(0)
    model = build_model(MODELS[5], vocab_size=30)
    sentences = _random_sentences(25)
    data = SentenceBatches(sentences, batch_size=8, pad_id=0)
    rows = timestep_loss(model, data)
    nll, count = evaluate(model, data)
    assert rows[0]["tokens"] == 25  # every sentence predicts a token after <s>
    assert [r["tokens"] for r in rows] == [
        sum(len(s) - 1 > t for s in sentences) for t in range(len(rows))
    ]
    assert sum(r["tokens"] for r in rows) == count
    assert sum(r["loss"] * r["tokens"] for r in rows) == pytest.approx(nll, rel=1e-6)
