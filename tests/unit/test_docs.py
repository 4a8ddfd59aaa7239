"""README and docs/ stay true: the commands they show name real modules, scripts, config options
and compose; the README stays a short front door; CI runs the README's test command."""

from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from lmexp.config import register_configs, to_train_config
from lmexp.resolvers import register_resolvers
from tests.conftest import CONF_DIR, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
GROUPS = (
    "experiment",
    "model",
    "optim",
    "schedule",
    "data",
    "trainer",
    "launcher",
    "sweep",
    "scale",
)
SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def _commands(page: Path) -> list[list[str]]:
    """The shell commands of a page's ```bash blocks, as argument lists (comments dropped)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\|", line):
                words = shlex.split(part, comments=True)
                if words:
                    commands.append(words)
    return commands


def _command_ids(pages: list[Path]) -> list[tuple[str, list[str]]]:
    return [(p.name, c) for p in pages for c in _commands(p)]


ALL = _command_ids(PAGES)


def _program(words: list[str]) -> tuple[str | None, list[str]]:
    """(`python -m` module or console script, its arguments); (None, []) for other commands."""
    words = [w.removeprefix(".venv/bin/") for w in words]
    if len(words) >= 3 and words[0] in ("python", "python3") and words[1] == "-m":
        return words[2], words[3:]
    if words[0] in SCRIPTS:
        return words[0], words[1:]
    return None, []


def test_the_readme_is_a_short_front_door() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) < 250
    assert len(ALL) > 40  # the pages do show commands, and this test reads them


@pytest.mark.parametrize(("page", "words"), ALL, ids=[f"{p}:{' '.join(w)[:60]}" for p, w in ALL])
def test_every_command_names_what_exists(page: str, words: list[str]) -> None:
    program, args = _program(words)
    if program is not None and program not in SCRIPTS:
        assert importlib.util.find_spec(program) is not None, f"{page}: no module {program}"
    for word in words:
        if word.startswith("sweeps/") or word.startswith("scripts/"):
            assert (REPO / word).is_file(), f"{page}: no file {word}"
    for arg in args:
        group, sep, values = arg.lstrip("+").partition("=")
        if sep and group in GROUPS and "<" not in values:
            for value in values.strip("[]").split(","):  # a sweep a,b or a list [a,b]
                option = CONF_DIR / group / f"{value}.yaml"
                assert value == "null" or option.is_file(), f"{page}: {arg}: no {option}"


TRAIN = [
    (page, args)
    for page, words in ALL
    for program, args in [_program(words)]
    if program in ("lmexp.train", "lmexp-train")
    and not any("<" in a for a in args)
    and "-sc" not in args  # shell completion: nothing is composed
]


@pytest.mark.parametrize(("page", "args"), TRAIN, ids=[f"{p}:{' '.join(a)[:60]}" for p, a in TRAIN])
def test_every_training_command_composes_and_validates(page: str, args: list[str]) -> None:
    # A sweep's first job stands for the rest (each value is an option checked above); Hydra's
    # own keys and Optuna's search expressions are the launcher's and the sweeper's business.
    overrides, words = [], iter(args)
    for a in words:
        if a in ("--cfg", "-c", "--package", "-p", "--info", "-i"):
            next(words, None)  # Hydra's own flags and their values
        elif "=" in a and not a.startswith(("hydra.", "hydra/")) and "(" not in a:
            key, _, value = a.partition("=")
            overrides.append(a if value.startswith("[") else a.split(",")[0])  # a list: whole
    register_configs()
    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # as inside a job: launcher presets read it
    task = cfg.copy()
    with open_dict(task):
        del task["hydra"]
    to_train_config(task)


def test_ci_runs_the_readmes_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quickstart = re.search(r"^```bash\n(.*?)^```", readme, re.M | re.S).group(1).splitlines()
    (test_command,) = [line for line in quickstart if "pytest" in line]
    assert test_command in (REPO / ".ci" / "run").read_text()


def _python_imports(page: Path) -> list[str]:
    """The modules a page's ```python blocks import (`from m import x`, `import m`)."""
    blocks = re.findall(r"^ *```python\n(.*?)^ *```", page.read_text(encoding="utf-8"), re.M | re.S)
    found = []
    for block in blocks:
        found += re.findall(r"^\s*(?:from|import)\s+([\w.]+)", block, re.M)
    return found


def test_the_python_the_docs_show_imports_outside_the_checkout(tmp_path):
    """A user's notebook lives elsewhere: `from analysis...` works only at the repo's root."""
    import subprocess
    import sys

    modules = sorted({m for page in PAGES for m in _python_imports(page)})
    ours = [m for m in modules if m.split(".")[0] in ("lmexp", "analysis")]
    assert ours, "no python block imports lmexp"
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    done = subprocess.run(
        [sys.executable, "-c", code, *ours], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


COMMIT_REF = re.compile(r"\b(?:at|commit|commits|from)\s+`?([0-9a-f]{7,40})\b")


def _why_no_history() -> str | None:
    """Why this checkout's history cannot be checked against (None: it can)."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        return "not a git checkout"
    shallow = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True
    )
    if shallow.stdout.strip() == "true":
        return "a shallow clone has not the history to check against"
    return None


def _is_ancestor(commit: str) -> bool:
    import subprocess

    known = subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=REPO, capture_output=True
    )
    return known.returncode == 0


def test_every_commit_a_measurement_names_is_in_this_history():
    """A measured number says the commit that produced it; that commit must be one this
    checkout descends from (a typo, or a commit of another branch, would not be)."""
    why = _why_no_history()
    if why:
        pytest.skip(why)
    named = {m for page in PAGES for m in COMMIT_REF.findall(page.read_text(encoding="utf-8"))}
    assert named, "no page names a commit"
    for commit in sorted(named):
        assert _is_ancestor(commit), f"{commit} is not an ancestor of HEAD"


# A table of measurements is one whose header row names a measured quantity: tok/s or
# tokens/s, ms/step, a memory size (KB, MB, GB), FLOP, perplexity or ppl, loss, nats, time,
# seconds, "(s)", a unit "s" or "min" ending a cell ("lmexp s"), CPU-seconds, wall-clock, ×
# (a ratio), speedup, or load. A table whose first header cell is empty names its quantities
# in its first column instead, and is read there the same way. A table the text just above calls
# "measured" is one too, whatever its header. Configuration and reference tables (key,
# default, what, meaning, ...) name none of these.
MEASURED = re.compile(
    r"tok(?:en)?s/s|ms/step|\b[KMG]i?B\b|FLOP|perplexit|\bppl\b|\bloss\b|\bnats?\b|\btime\b"
    r"|seconds|\(s\)|\s(?:s|min)$|CPU-s|wall|×|speedup|\bload\b",
    re.I,
)
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """A page as (kind, first line number, lines): kind is heading, fence, table or para."""
    lines, blocks, i = [line.strip() for line in text.splitlines()], [], 0

    def table_at(j: int) -> bool:
        below = lines[j + 1] if j + 1 < len(lines) else ""
        return lines[j].startswith("|") and re.fullmatch(r"\|[\s:|-]+\|", below) is not None

    while i < len(lines):
        start = i
        if not lines[i]:
            i += 1
            continue
        if lines[i].startswith("```"):
            i += 1
            while i < len(lines) and lines[i] != "```":
                i += 1
            i += 1
            kind = "fence"
        elif lines[i].startswith("#"):
            i += 1
            kind = "heading"
        elif table_at(i):
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            kind = "table"
        else:
            while i < len(lines) and lines[i] and not lines[i].startswith(("```", "#")):
                i += 1
                if i < len(lines) and table_at(i):
                    break
            kind = "para"
        blocks.append((kind, start + 1, lines[start:i]))
    return blocks


def _cells(row: str) -> list[str]:
    return [c.strip().strip("`*").strip() for c in row.strip().strip("|").split("|")]


def _provenance(blocks, k: int) -> list[tuple[str, int, list[str]]]:
    """The text a table's provenance is read from: the two paragraphs or code blocks just above
    it (not past a heading or another table), and a ```bash block just below it."""
    above = []
    for block in reversed(blocks[:k]):
        if block[0] in ("heading", "table") or len(above) == 2:
            break
        above.insert(0, block)
    below = blocks[k + 1 : k + 2]
    return above + [b for b in below if b[0] == "fence" and b[2][0].strip() == "```bash"]


def _measurement_tables() -> list[tuple[str, int, str, list[str]]]:
    """(page, line, the provenance text, its commands) of every table of measurements."""
    found = []
    for page in PAGES:
        blocks = _blocks(page.read_text(encoding="utf-8"))
        for k, (kind, line, rows) in enumerate(blocks):
            if kind != "table":
                continue
            named = _cells(rows[0])
            if named and not named[0]:
                named = named + [_cells(row)[0] for row in rows[2:]]
            window = _provenance(blocks, k)
            prose = " ".join(" ".join(b[2]) for b in window if b[0] == "para")
            if not any(MEASURED.search(c) for c in named) and not re.search(
                r"\bmeasured\b", prose, re.I
            ):
                continue
            commands = re.findall(r"`([^`]+)`", prose)
            for b in window:
                if b[0] == "fence" and b[2][0].strip() == "```bash":
                    commands += "\n".join(b[2][1:-1]).replace("\\\n", " ").splitlines()
            found.append((page.name, line, prose, commands))
    return found


MEASUREMENT_TABLES = _measurement_tables()


def _runnable(command: str) -> bool | None:
    """Whether a command's program exists: a `python -m` module, a console script, or a
    sweeps/ or scripts/ file; None when the text is not a command of these kinds."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value command
        words = words[1:]
    if words[:1] == ["bash"]:
        words = words[1:]
    if not words:
        return None
    if words[0].startswith(("sweeps/", "scripts/")):
        return (REPO / words[0]).is_file()
    program, _ = _program(words)
    if program is None:
        return None
    return program in SCRIPTS or importlib.util.find_spec(program) is not None


def test_the_tables_of_measurements_are_found():
    pages = {page for page, *_ in MEASUREMENT_TABLES}
    assert {"speed.md", "sweeps.md", "configuration.md", "reproductions.md"} <= pages
    assert len(MEASUREMENT_TABLES) >= 12


@pytest.mark.parametrize(
    ("page", "line", "prose", "commands"),
    MEASUREMENT_TABLES,
    ids=[f"{page}:{line}" for page, line, *_ in MEASUREMENT_TABLES],
)
def test_every_table_of_measurements_names_its_commit_date_and_command(
    page: str, line: int, prose: str, commands: list[str]
):
    """Just above a table of measurements, a line such as "Measured at 995ae80 on 2026-11-23
    (2-core Intel Xeon): `python -m benchmarks.speed --sizes small --steps 30`." names the
    commit it was measured at (one HEAD descends from), the date, and a command that runs
    today."""
    where = f"{page}:{line}"
    commits = COMMIT_REF.findall(prose)
    assert commits, f"{where}: no commit (at <hash>) above the table"
    assert DATE.search(prose), f"{where}: no date (YYYY-MM-DD) above the table"
    runnable = {c: _runnable(c) for c in commands}
    assert any(runnable.values()), f"{where}: no command in backticks that runs"
    gone = [c for c, ok in runnable.items() if ok is False]
    assert not gone, f"{where}: no such program: {gone}"
    if _why_no_history() is None:
        for commit in commits:
            assert _is_ancestor(commit), f"{where}: {commit} is not an ancestor of HEAD"


def test_the_tests_the_reproductions_page_cites_exist():
    """Its 'shown by' column names test files and functions: each one is there."""
    text = (REPO / "docs" / "reproductions.md").read_text(encoding="utf-8")
    cited = re.findall(r"`(tests/[\w/]+\.py)`(?: \(`(test_\w+?)(\*?)`\))?", text)
    assert len(cited) >= 20, "the specification tables cite their tests"
    for path, name, wildcard in cited:
        source = (REPO / path).read_text(encoding="utf-8")
        if name:
            wanted = f"def {name}" if wildcard else f"def {name}("
            assert wanted in source, f"{path} has no {name}{wildcard}"
