"""lmexp/run/keys.py, the one table of facts about config keys, against the schema it describes."""

from __future__ import annotations

from omegaconf import OmegaConf

from lmexp.models import names
from lmexp.run import keys
from lmexp.run.record import flatten


def _every_key(compose) -> set[str]:
    """Every dotted key some `model=<name>` config has (each architecture has its own keys)."""
    found: set[str] = set()
    for name in names():
        found |= set(flatten(OmegaConf.to_container(compose([f"model={name}"]))))
    return found


def test_every_key_of_the_table_is_a_key_of_the_schema(compose) -> None:
    known = _every_key(compose)
    for key in keys.KEYS:
        wildcard = key.path.endswith(".*")
        found = any(k.startswith(key.path[:-1]) for k in known) if wildcard else key.path in known
        assert found, f"{key.path} is in lmexp/run/keys.py but in no config"


def test_roles_of_keys_and_of_whole_sections() -> None:
    assert keys.role("trainer.max_steps") == keys.BUDGET
    assert keys.role("device") == keys.EXECUTION
    assert keys.role("logger.mlflow.tracking_uri") == keys.EXECUTION  # a whole section
    assert keys.role("data.root") == keys.PLUMBING
    assert keys.role("model.hidden_size") == keys.SETTING  # not listed: a setting
    assert keys.role("model.new_key") == keys.SETTING


def test_what_pins_a_checkpoint() -> None:
    pinned = ("model.hidden_size", "model.anything", "data.batch_size", "data.name", "optim.name")
    assert all(keys.pins_checkpoint(k) for k in pinned)
    assert not any(keys.pins_checkpoint(k) for k in ("optim.lr", "trainer.max_steps", "seed"))


def test_every_report_column_has_a_header_and_a_distinct_name() -> None:
    shown = keys.columns()
    assert [k.header for k in shown[:6]] == ["IL", "BS", "SL", "HS", "ES", "NL"]
    assert all(k.header and k.meaning for k in shown)
    assert len({k.column for k in shown}) == len(shown) == len({k.header for k in shown})
