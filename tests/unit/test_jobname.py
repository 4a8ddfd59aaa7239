"""A sweep job's directory is named by what varies across the sweep."""

from __future__ import annotations

from lmexp.run.jobname import MAX_SUFFIX, job_dir_name
from lmexp.search.naming import fixed_keys, fixed_keys_override


def test_the_name_is_number_architecture_optimizer_then_what_varies():
    assert job_dir_name(0, "rnn", "adam", "") == "0-rnn-adam"
    assert job_dir_name(3, "gru", "sgd", "model=gru|optim=sgd") == "3-gru-sgd"
    assert job_dir_name(1, "rnn", "adam", "seed=2") == "1-rnn-adam-seed=2"
    two = "model.dropout=0.2|optim.lr=0.01"
    assert job_dir_name(7, "gru", "sgd", two) == "7-gru-sgd-dropout=0.2,lr=0.01"


def test_keys_that_share_a_last_part_keep_their_section():
    name = job_dir_name(0, "gru", "sgd", "data.dropout=0.1|model.dropout=0.2")
    assert name == "0-gru-sgd-data.dropout=0.1,model.dropout=0.2"


def test_sampled_floats_are_shortened_and_unsafe_characters_replaced():
    assert job_dir_name(4, "gru", "sgd", "optim.lr=0.0123456789") == "4-gru-sgd-lr=0.01235"
    assert job_dir_name(4, "gru", "sgd", "data.root=/data/my ptb/") == "4-gru-sgd-root=my_ptb"
    assert job_dir_name(4, "gru", "sgd", "model.sizes=[1,2]") == "4-gru-sgd-sizes=_1,2_"


def test_a_long_suffix_is_bounded_and_stays_distinct():
    many = "|".join(f"model.key{i}={i * 1000}" for i in range(20))
    other = many.replace("19000", "19001")
    a, b = job_dir_name(0, "gru", "sgd", many), job_dir_name(0, "gru", "sgd", other)
    assert len(a) <= len("0-gru-sgd-") + MAX_SUFFIX and a != b
    assert a == job_dir_name(0, "gru", "sgd", many)  # stable


def test_the_fixed_keys_are_those_given_one_value():
    overrides = ["model=gru,lstm", "optim.lr=0.1", "+model.extra=1", "seed=1,2", "threads=1"]
    assert fixed_keys(overrides) == ["model.extra", "optim.lr", "threads"]
    assert fixed_keys(overrides, varying=["+model.extra"]) == ["optim.lr", "threads"]
    assert fixed_keys(["seed=5", "seed=1,2"]) == []  # given twice, swept once: it varies
    assert fixed_keys_override(["a.b=1"]) == (
        "hydra.job.config.override_dirname.exclude_keys=[a.b]"
    )
