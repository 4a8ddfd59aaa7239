"""What lmexp knows about each config key besides its type and default: the one table of it.

The schema (each group's dataclass) owns a key's type, default and validation. This table owns
the rest, for every reader at once: whether a key changes what a job computes, bounds it, or
only says where and how fast it runs (the relaunch check, `resume=force`, the trackers'
HParams), and how the report shows it (its column, header, meaning and format). It imports
nothing, so the analysis reads it without torch. A key that is not here is a plain setting: it
changes what the job computes, and the report shows no column for it.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a key is to a relaunch and to the trackers:
SETTING = "setting"  # changes what the job computes: a relaunch may not change it
BUDGET = "budget"  # how long it trains: `resume=force` may change it, and the summary says so
EXECUTION = "execution"  # where and how fast it runs, never what: a relaunch may change it
PLUMBING = "plumbing"  # where the data lives and how it is fetched: no HParams column


@dataclass(frozen=True)
class Key:
    """One config key (`section.key`, or `section.*`: every key under it)."""

    path: str
    role: str = SETTING
    column: str | None = None  # the report's column for it; None: no column
    header: str = ""  # the column's header in tables and curve labels, e.g. "IL"
    meaning: str = ""  # the header explained in a table's caption
    always: bool = False  # shown in the results table even where every job has one value
    text: bool = False  # a word, not a number: left-aligned, printed as it is
    fmt: str = "g"  # format spec of a number in a table cell
    shown: str | None = None  # the column the table shows instead, if derived (keep_prob)
    # a checkpoint trained with another value cannot be resumed under this one: the
    # architecture, and what decides what a batch position means
    pins_checkpoint: bool = False
    # jobs whose configs differ only in such keys are repeats of one cell (the seed): the
    # report pools them into a mean and an interval
    repeat: bool = False
    # jobs whose configs differ only in such keys build the same model on the same data, so
    # launcher=packed may train them as one batched model (each member keeps its own value)
    packable: bool = False

    def covers(self, dotted: str) -> bool:
        if self.path.endswith(".*"):
            return dotted.startswith(self.path[:-1])
        return dotted == self.path


# In the order of the report's columns, which is also its sort order after architecture and
# optimizer (IFT6135 assignment 2's Table 1 first: IL, BS, SL, HS, NL, Keep).
KEYS = (
    Key("data.name", pins_checkpoint=True),
    Key("optim.name", pins_checkpoint=True),
    Key("optim.lr", column="lr", header="IL", meaning="initial learning rate", always=True),
    Key(
        "data.batch_size",
        column="batch_size",
        header="BS",
        meaning="batch size",
        always=True,
        pins_checkpoint=True,
    ),
    Key(
        "data.seq_len",
        column="seq_len",
        header="SL",
        meaning="sequence length (BPTT window)",
        always=True,
        pins_checkpoint=True,
    ),
    Key("model.hidden_size", column="hidden_size", header="HS", meaning="hidden size", always=True),
    Key("model.emb_size", column="emb_size", header="ES", meaning="embedding size"),
    Key(
        "model.num_layers",
        column="num_layers",
        header="NL",
        meaning="number of layers",
        always=True,
    ),
    Key("model.num_heads", column="num_heads", header="Heads", meaning="attention heads"),
    Key("model.ff_size", column="ff_size", header="FF", meaning="feed-forward width"),
    Key(
        "model.nonlinearity",
        column="nonlinearity",
        header="Act",
        meaning="RNN nonlinearity",
        text=True,
    ),
    Key(
        "model.dropout",
        column="dropout",
        header="Keep",
        meaning="dropout keep probability (1 - dropout)",
        always=True,
        shown="keep_prob",
        packable=True,  # each member draws its own masks
    ),
    Key(
        "model.impl",
        column="impl",
        header="Impl",
        meaning="recurrent implementation (scratch or fused)",
        text=True,
    ),
    Key(
        "model.gru_variant",
        column="gru_variant",
        header="GRU",
        meaning="GRU reset gate before or after U_h",
        text=True,
    ),
    Key(
        "model.attn_impl",
        column="attn_impl",
        header="Attn",
        meaning="attention kernel (scratch or sdpa)",
        text=True,
    ),
    Key(
        "precision",
        column="precision",
        header="Prec",
        meaning="numeric precision of the forward pass",
        text=True,
    ),
    Key("schedule.decay", column="decay", header="Decay", meaning="lr divisor per epoch"),
    Key("optim.weight_decay", column="weight_decay", header="WD", meaning="weight decay"),
    Key("trainer.clip_norm", column="clip_norm", header="Clip", meaning="gradient-norm clip"),
    Key("trainer.max_epochs", BUDGET, column="max_epochs", header="MaxEp", meaning="epoch budget"),
    Key("trainer.max_steps", BUDGET, column="max_steps", header="MaxSteps", meaning="step budget"),
    Key("trainer.max_tokens", BUDGET),
    Key(
        "trainer.max_sequences",
        BUDGET,
        column="max_sequences",
        header="MaxSeq",
        meaning="sequence budget (training sequences)",
        fmt=".0f",  # 1000000, not 1e+06
    ),
    Key(
        "trainer.max_minutes",
        BUDGET,
        column="max_minutes",
        header="MaxMin",
        meaning="wall-clock budget (min)",
    ),
    Key(
        "model.tie_weights",
        column="tie_weights",
        header="Tied",
        meaning="tied input/output embeddings",
        text=True,
    ),
    Key("seed", column="seed", header="Seed", meaning="random seed", repeat=True, packable=True),
    Key(
        "seeds", repeat=True, packable=True
    ),  # how many seeds a sweep gives each cell (lmexp/config.py)
    Key("resume", EXECUTION, packable=True),
    Key("pack", EXECUTION, packable=True),
    Key("device", EXECUTION),
    Key("threads", EXECUTION),
    Key("jobs_per_gpu", EXECUTION),
    Key("cpu_allocator", EXECUTION),
    Key("cuda_graph", EXECUTION),
    Key("compile", EXECUTION),
    Key("trainer.progress", EXECUTION),
    Key("trainer.checkpoint_every", EXECUTION),
    Key("trainer.sample_every", EXECUTION),  # text on the side, from its own random stream
    Key("trainer.sample_from", EXECUTION),
    Key("trainer.sample_count", EXECUTION),
    Key("trainer.sample_temperature", EXECUTION),
    Key("trainer.test_whole", EXECUTION),  # a second test pass: training is the same
    Key("logger.*", EXECUTION, packable=True),  # trackers watch a run; they never change it
    Key("data.root", PLUMBING),
    Key("data.download", PLUMBING),
    Key("data.mirrors", PLUMBING),
    Key("model.*", pins_checkpoint=True),  # every key of the architecture's schema
    # each member of a pack has its own optimizer, schedule, trainer loop and judge
    Key("optim.*", packable=True),
    Key("schedule.*", packable=True),
    Key("trainer.*", packable=True),
    Key("prune.*", packable=True),
)


def role(dotted: str) -> str:
    """The role of a flattened config key (`trainer.max_steps` -> "budget")."""
    for key in KEYS:
        if key.covers(dotted):
            return key.role
    return SETTING


def pins_checkpoint(dotted: str) -> bool:
    """Whether a checkpoint trained with another value of this key cannot be resumed."""
    return any(key.pins_checkpoint and key.covers(dotted) for key in KEYS)


def in_cell(dotted: str) -> bool:
    """Whether a key tells one cell from another: what the job computes and for how long,
    not its seed (a repeat) nor where and how fast it runs."""
    if any(key.repeat and key.covers(dotted) for key in KEYS):
        return False
    return role(dotted) in (SETTING, BUDGET)


def draws_with_seed(dotted: str) -> bool:
    """Whether a key decides what a seed draws: the initial weights (the architecture's keys)
    and the data's order (the data's). Two cells alike in these start from the same weights and
    read the same batches under one seed, so their runs pair by seed."""
    return dotted.startswith(("model.", "data.")) and role(dotted) == SETTING


def packable(dotted: str) -> bool:
    """Whether jobs that differ in this key may still train as one pack (launcher=packed)."""
    return any(key.packable and key.covers(dotted) for key in KEYS)


def budgets() -> tuple[str, ...]:
    """The budget keys, in the table's order (`trainer.max_epochs` first)."""
    return tuple(key.path for key in KEYS if key.role == BUDGET)


def columns() -> tuple[Key, ...]:
    """The keys the report shows a column for, in column order."""
    return tuple(key for key in KEYS if key.column is not None)
