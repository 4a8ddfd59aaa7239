"""Every option of every group composes and converts; bad values fail before any work."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigAttributeError, ValidationError

from lmexp.config import TrainConfig, to_train_config
from lmexp.data.schema import DataConfig
from lmexp.models import ARCHITECTURES, build_model, model_config, names
from lmexp.training.optim import OptimConfig
from lmexp.training.schedules import ScheduleConfig
from lmexp.training.schema import TrainerConfig
from tests.conftest import CONF_DIR

GROUPS = ["model", "optim", "data", "trainer"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_converts(compose, group: str) -> None:
    for option in _options(group):
        # model=custom builds the documented example class (docs/examples/bigram.py)
        extra = ["model._target_=bigram.BigramLM"] if (group, option) == ("model", "custom") else []
        cfg = to_train_config(compose([f"{group}={option}", *extra]))
        assert isinstance(cfg, TrainConfig)


@pytest.mark.parametrize("name", names())
def test_each_architecture_yaml_states_its_schema_defaults(compose, name: str) -> None:
    # one home per default: `model=<name>` on the command line and model_config(name) in
    # Python (lmexp.load, the benchmark, the tests) build the same model
    composed = OmegaConf.to_container(compose([f"model={name}"]).model)
    assert composed == dataclasses.asdict(model_config(name))


def test_every_model_option_is_a_registered_architecture() -> None:
    assert _options("model") == sorted([*names(), "custom"])  # custom: a user's own class


def test_every_optim_and_schedule_option_is_registered() -> None:
    from lmexp.training import optim, schedules

    assert _options("optim") == sorted(optim.OPTIMIZERS)
    assert _options("schedule") == sorted(schedules.SCHEDULES)


def test_every_data_option_is_a_registered_corpus() -> None:
    from lmexp.data import CORPORA

    assert _options("data") == sorted(CORPORA)


def _defaults(schema: type) -> dict:
    """A schema's default values (MISSING ones left out: an option must set those)."""
    found = {}
    for f in dataclasses.fields(schema):
        if f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
        elif f.default not in (dataclasses.MISSING, MISSING):
            found[f.name] = f.default
    return found


def _option_files() -> list:
    files = [CONF_DIR / "train.yaml"]
    for group in ("data", "model", "optim", "schedule", "trainer"):
        files += sorted((CONF_DIR / group).glob("*.yaml"))
    return files


@pytest.mark.parametrize("path", _option_files(), ids=lambda p: p.relative_to(CONF_DIR).as_posix())
def test_no_option_file_restates_a_schema_default(path) -> None:
    """One home per default: the schema's dataclass; a YAML option sets only what differs."""
    group = path.parent.name
    written = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items()}
    written.pop("defaults", None)
    written.pop("hydra", None)
    if group == "model":
        arch = written.get("name") or path.stem
        schema = ARCHITECTURES[arch].schema
    else:
        schema = {
            "conf": TrainConfig,
            "data": DataConfig,
            "optim": OptimConfig,
            "schedule": ScheduleConfig,
            "trainer": TrainerConfig,
        }[group]
    defaults = _defaults(schema)
    restated = sorted(k for k, v in written.items() if k in defaults and defaults[k] == v)
    assert restated == [], f"{path.name} restates {schema.__name__}'s defaults of {restated}"


@pytest.mark.parametrize(("group", "schema"), [("data", DataConfig), ("trainer", TrainerConfig)])
def test_the_default_option_of_a_group_states_its_schema_defaults(compose, group, schema):
    composed = OmegaConf.to_container(getattr(compose([]), group))
    assert composed == dataclasses.asdict(schema())


def test_the_default_optimizer_sets_only_what_the_schema_leaves_open(compose) -> None:
    composed = OmegaConf.to_container(compose([]).optim)
    defaults = {f.name: f.default for f in dataclasses.fields(OptimConfig)}
    given = {k: v for k, v in defaults.items() if v not in (MISSING, dataclasses.MISSING)}
    assert {k: composed[k] for k in given} == given
    assert composed["betas"] == [0.9, 0.999]


def test_groups_hold_the_issue_options() -> None:
    assert {"gru", "lstm", "rnn", "rnn_attn", "transformer"} <= set(_options("model"))
    assert {"adam", "sgd", "sgd_schedule"} <= set(_options("optim"))
    assert _options("schedule") == ["constant", "decay", "plateau"]
    assert _options("scale") == ["cpu"]
    assert "ptb" in _options("data") and "default" in _options("trainer")


def _presets(study: str) -> list[str]:
    """The run presets of one study (files starting with _ are the deltas' shared bases)."""
    folder = CONF_DIR / "experiment" / study
    return sorted(f"{study}/{p.stem}" for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


IFT6135 = _presets("ift6135_a2")


def test_the_assignment_has_its_eighteen_runs() -> None:
    # Table 1 (3 architectures x 3 optimizers) and Table 2 (3 x 3), the 4 runs of
    # SGD_LR_SCHEDULE again as the assignment's text reads it (the others follow its code), and
    # Table 2's third RNN as its command line gives it (its table row disagrees)
    assert len(IFT6135) == 18 + 4 + 1
    assert len([name for name in IFT6135 if name.endswith("_sgd_schedule_text")]) == 4


def test_table_2s_third_rnn_is_offered_as_its_row_and_as_its_command(compose) -> None:
    row = to_train_config(compose(["experiment=ift6135_a2/table2_rnn_3"]))
    command = to_train_config(compose(["experiment=ift6135_a2/table2_rnn_3_command"]))
    assert (row.optim.lr, row.data.batch_size, row.model.num_layers, row.model.dropout) == (
        0.0001,
        128,
        3,
        0.5,
    )
    assert (command.optim.lr, command.data.batch_size, command.model.num_layers) == (0.00001, 20, 2)
    assert command.model.dropout == pytest.approx(0.65) and command.model.hidden_size == 2000


@pytest.mark.parametrize("name", IFT6135)
def test_scale_cpu_keeps_the_grid_and_shrinks_the_budget(compose, name: str) -> None:
    full = to_train_config(compose([f"experiment={name}"]))
    cpu = to_train_config(compose([f"experiment={name}", "scale=cpu"]))
    assert (cpu.model.name, cpu.optim.name, cpu.optim.lr) == (
        full.model.name,
        full.optim.name,
        full.optim.lr,
    )
    assert (cpu.data.batch_size, cpu.model.num_layers) == (
        full.data.batch_size,
        full.model.num_layers,
    )
    assert cpu.model.dropout == full.model.dropout
    assert cpu.model.hidden_size < full.model.hidden_size and cpu.trainer.max_epochs == 1
    assert cpu.trainer.max_minutes == 2.5  # 9 jobs x 2.5 min + evaluation fits in 30 minutes
    # a tenth of the recurrent width, a quarter of the Transformer's
    assert cpu.model.hidden_size == full.model.hidden_size // (
        4 if cpu.model.name == "transformer" else 10
    )


@pytest.mark.parametrize("name", IFT6135)
def test_every_ift6135_preset_composes(compose, name: str) -> None:
    cfg = to_train_config(compose([f"experiment={name}"]))
    run = name.removeprefix("ift6135_a2/")
    if run.startswith("table2_"):  # table2_<model>_<k>: §4.3 settings
        assert cfg.model.name == run.split("_")[1]
    else:  # table1_<model>_<optim>: §4.1-4.2
        model, optim = run.removeprefix("table1_").removesuffix("_text").split("_", 1)
        assert cfg.model.name == model and cfg.optim.name == optim
    assert cfg.trainer.max_epochs == 40 and cfg.seed == 1111


def test_the_character_lm_reports_models_have_presets_at_their_own_sizes(compose) -> None:
    rnn = to_train_config(compose(["experiment=charlm_text8/rnn"]))
    assert (rnn.data.name, rnn.model.name, rnn.trainer.max_epochs) == ("text8", "lstm", 5)
    assert (rnn.model.hidden_size, rnn.model.emb_size) == (20, 50)
    assert (rnn.data.batch_size, rnn.optim.lr) == (1, 0.005)  # the report's loop: one stream
    tf = to_train_config(compose(["experiment=charlm_text8/transformer"]))
    assert (tf.model.hidden_size, tf.model.num_layers, tf.data.seq_len) == (50, 2, 20)
    assert (tf.model.norm, tf.model.positions, tf.optim.name, tf.optim.lr) == (
        "post",
        "learned",
        "adam",
        0.001,
    )
    assert tf.trainer.max_epochs == 5


def test_cmu_preset_has_the_homeworks_defaults_and_moves_embed_and_hidden_together(compose):
    cfg = to_train_config(compose(["experiment=cmu10601_hw7/rnn_attn"]))
    assert (cfg.model.name, cfg.model.emb_size, cfg.model.hidden_size) == ("rnn_attn", 128, 128)
    assert (cfg.model.d_k, cfg.model.d_v, cfg.data.batch_size) == (128, 128, 128)
    assert (cfg.data.tokenizer, cfg.data.mode) == ("bpe", "sentences")
    assert (cfg.trainer.max_sequences, cfg.trainer.eval_every_budget) == (50000, 0.1)
    wide = to_train_config(compose(["experiment=cmu10601_hw7/rnn_attn", "model.emb_size=512"]))
    assert wide.model.hidden_size == 512


def test_ift6135_presets_match_the_assignment_table(compose) -> None:
    cfg = to_train_config(compose(["experiment=ift6135_a2/table1_gru_sgd_schedule"]))
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.optim.lr) == (1500, 2, 10)
    assert cfg.model.dropout == pytest.approx(0.65)  # dp_keep_prob 0.35
    assert (cfg.schedule.flat_epochs, cfg.schedule.compounding) == (14, True)
    cfg = to_train_config(compose(["experiment=ift6135_a2/table1_transformer_adam"]))
    assert (cfg.data.batch_size, cfg.model.hidden_size, cfg.model.num_heads) == (128, 512, 16)
    assert cfg.model.dropout == pytest.approx(0.1)


# Zaremba, Sutskever & Vinyals (2014), §4.1 (TensorFlow's ptb_word_lm.py where the paper is
# silent): units, dropout, init range, unroll, epochs at lr 1, decay per epoch after, epochs in
# all, clip norm. Every preset: 2 layers, batch 20, SGD at lr 1.
ZAREMBA_2014 = {
    "small": (200, 0.0, 0.1, 20, 4, 2.0, 13, 5.0),
    "medium": (650, 0.5, 0.05, 35, 6, 1.2, 39, 5.0),
    "large": (1500, 0.65, 0.04, 35, 14, 1.15, 55, 10.0),
}


@pytest.mark.parametrize("size", sorted(ZAREMBA_2014))
def test_the_zaremba_2014_presets_compose_to_the_papers_settings(compose, size: str) -> None:
    from lmexp.training.schedules import lr_at_epoch

    units, dropout, init, unroll, flat, decay, epochs, clip = ZAREMBA_2014[size]
    cfg = to_train_config(compose([f"experiment=zaremba2014/{size}"]))
    model, data, trainer = cfg.model, cfg.data, cfg.trainer
    assert (model.name, model.num_layers, model.hidden_size, model.emb_size) == (
        "lstm",
        2,
        units,
        units,
    )
    assert (model.dropout, model.init_range, model.tie_weights) == (dropout, init, False)
    assert (data.name, data.batch_size, data.seq_len, data.eval_batch_size) == (
        "ptb",
        20,
        unroll,
        20,
    )
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("sgd", 1.0, 0.0)
    rates = [lr_at_epoch(cfg.schedule, 1.0, e) for e in range(epochs)]
    assert rates == pytest.approx([1.0] * flat + [decay**-k for k in range(1, epochs - flat + 1)])
    assert (trainer.max_epochs, trainer.clip_norm, trainer.loss_average) == (
        epochs,
        clip,
        "time_sum",
    )
    assert trainer.test_whole  # the tutorial's test pass: batch 1, one stream
    assert trainer.test_checkpoint == "last"  # of the model as training left it


# pytorch/examples' word_language_model README (its main.py's defaults otherwise): units,
# dropout, tied; every row: 2 layers, SGD lr 20, clip 0.25, batch 20, bptt 35, 40 epochs,
# lr / 4 after an epoch without a new best, evaluation on 10 streams, seed 1111.
PYTORCH_EXAMPLES = {
    "lstm650": (650, 0.5, False),
    "lstm650_tied": (650, 0.5, True),
    "lstm1500": (1500, 0.65, False),
    "lstm1500_tied": (1500, 0.65, True),
}


@pytest.mark.parametrize("name", sorted(PYTORCH_EXAMPLES))
def test_the_pytorch_examples_presets_compose_to_its_readme(compose, name: str) -> None:
    units, dropout, tied = PYTORCH_EXAMPLES[name]
    cfg = to_train_config(compose([f"experiment=pytorch_examples/{name}"]))
    model, data, trainer = cfg.model, cfg.data, cfg.trainer
    assert (model.name, model.num_layers, model.hidden_size, model.emb_size) == (
        "lstm",
        2,
        units,
        units,
    )
    assert (model.dropout, model.tie_weights, model.init_range) == (dropout, tied, None)
    assert (data.name, data.batch_size, data.seq_len, data.eval_batch_size) == ("ptb", 20, 35, 10)
    assert (cfg.optim.name, cfg.optim.lr, cfg.schedule.name, cfg.schedule.decay) == (
        "sgd",
        20.0,
        "plateau",
        4.0,
    )
    assert (trainer.max_epochs, trainer.clip_norm, trainer.eval_every, cfg.seed) == (
        40,
        0.25,
        1.0,
        1111,
    )
    assert (trainer.loss_average, trainer.test_checkpoint) == ("token", "best")


@pytest.mark.parametrize("arch", ["rnn", "gru", "transformer"])
def test_the_schedule_has_a_preset_for_the_code_and_one_for_the_text(compose, arch) -> None:
    from lmexp.training.schedules import lr_at_epoch

    code = to_train_config(compose([f"experiment=ift6135_a2/table1_{arch}_sgd_schedule"]))
    text = to_train_config(compose([f"experiment=ift6135_a2/table1_{arch}_sgd_schedule_text"]))
    assert (text.model, text.optim, text.data) == (code.model, code.optim, code.data)
    lr = code.optim.lr
    # the course code: flat for 15 epochs (0-14), then lr * (1/1.15) ** (epoch - 14), compounding
    assert lr_at_epoch(code.schedule, lr, 14) == lr
    # the text: "divide by 1.15 after each epoch", from the first
    want = [lr, lr / 1.15, lr / 1.15**2, lr / 1.15**3]
    assert [lr_at_epoch(text.schedule, lr, e) for e in range(4)] == pytest.approx(want)


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "transformer"])
def test_default_model_configs_build(compose, name: str) -> None:
    cfg = to_train_config(compose([f"model={name}"]))
    model = build_model(cfg.model, vocab_size=10_000)
    assert model.num_params() > 0


@pytest.mark.parametrize(
    ("override", "listed"),
    [("model=mamba", "transformer"), ("optim=lion", "sgd_schedule"), ("data=wiki103", "ptb")],
)
def test_unknown_option_lists_the_choices(compose, override: str, listed: str) -> None:
    with pytest.raises(ConfigCompositionException, match="Available options") as err:
        compose([override])
    assert f"\t{listed}\n" in str(err.value) + "\n"


def test_typo_in_key_fails(compose) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose(["model.hiden_size=10"])
    assert isinstance(err.value.__cause__, ConfigAttributeError)
    assert "Key 'hiden_size' not in 'LSTMConfig'" in str(err.value.__cause__)  # model=lstm's


def test_adding_an_unknown_key_fails(compose) -> None:
    cfg = compose(["+model.hiden_size=10"])  # Hydra merges it; the schema check must refuse it
    with pytest.raises(ValueError, match="unknown config key 'model.hiden_size'"):
        to_train_config(cfg)


def test_wrong_type_fails(compose) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose(["model.hidden_size=abc"])
    assert isinstance(err.value.__cause__, ValidationError)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.dropout=1.0"], "model.dropout=1.0 must be in"),
        (["model.dropout=-0.1"], r"model.dropout=-0.1 must be in \[0, 1\)"),
        (["model.hidden_size=0"], "model.hidden_size=0 must be positive"),
        (["model.num_layers=0"], "model.num_layers=0 must be positive"),
        (["data.seq_len=0"], "data.seq_len=0 must be positive; set data.seq_len=<n > 0>"),
        (["model=transformer", "model.hidden_size=201", "model.num_heads=2"], "not divisible"),
        (["data.batch_size=0"], "data.batch_size=0 must be positive"),
        (["optim.lr=-1"], "optim.lr=-1.0 must be positive"),
        (["trainer.max_epochs=null"], "no finite budget"),
        (["device=tpu"], "device='tpu' unknown"),
        (["precision=fp16"], r"precision='fp16' unknown; choose from \['fp32', 'bf16'\]"),
        (["model.impl=cudnn"], r"model.impl='cudnn' unknown; choose from \['scratch', 'fused'\]"),
        (["model=gru", "model.impl=fused"], "set model.gru_variant=reset_after"),
    ],
)
def test_cross_field_rules_name_the_key(compose, overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_train_config(compose(overrides))


def test_model_config_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="choose from"):
        model_config(name="mamba")


def test_sweep_dirs_differ_for_sweeps_started_in_the_same_second(compose) -> None:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    dirs = []
    for _ in range(2):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = hydra_compose(config_name="train", return_hydra_config=True)
            dirs.append(str(cfg.hydra.sweep.dir))
    assert dirs[0] != dirs[1]
    # ..._HH-MM-SS-ffffff: the name resolves to the microsecond
    assert re.search(r"_\d{2}-\d{2}-\d{2}-\d{6}$", dirs[0]), dirs[0]
