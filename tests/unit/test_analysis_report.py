"""analysis.report: the CLI writes every file, the pages carry tables, figures and statuses."""

from __future__ import annotations

import re

import pytest

from analysis.report import main
from tests.fixtures_analysis import mixed_sweep, write_job


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    sweep = mixed_sweep(root)
    out = root / "out"
    assert main([str(sweep), "--out", str(out), "--quiet"]) == 0
    return out


def test_all_files_are_written(report) -> None:
    for name in (
        "report.html",
        "report.md",
        "results.md",
        "results.tex",
        "results.csv",
        "commands.md",
        "commands.tex",
        "commands.csv",
        "status.md",
        "status.csv",
    ):
        assert (report / name).stat().st_size > 0, name
    assert len(list((report / "figures").glob("*.png"))) == 17
    assert len(list((report / "figures").glob("*.pdf"))) == 17
    # no sequence budget and one batch size: none of CMU 10-601 HW7's study outputs
    assert not list(report.glob("batch_time.*"))
    assert not list((report / "figures").glob("*loss-vs-*"))


def test_html_is_self_contained_with_captions_in_place(report) -> None:
    page = (report / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 17
    assert not re.search(r'src="(?!data:)', page)  # nothing fetched from disk or network
    assert "document.body.dataset.imagesLoaded" in page
    for figure in re.findall(r"<figure.*?</figure>", page, flags=re.S):
        assert figure.index("<img") < figure.index("<figcaption>")  # caption below
    for table in re.findall(r"<table.*?</table>", page, flags=re.S):
        assert table.index("<caption>") < table.index("<thead>")  # caption above
    assert page.count("<strong>") == 4  # one bold result per architecture


def test_pages_show_every_status_and_the_failed_error(report) -> None:
    for page in ("report.html", "report.md"):
        text = (report / page).read_text()
        for status in ("completed", "diverged", "failed", "unknown"):
            assert status in text, (page, status)
        assert "RuntimeError: CUDA out of memory" in text
        assert "Not plotted (no metrics rows): #8 sweep/8-lstm-adam (failed)" in text


def test_markdown_links_figures_by_relative_path(report) -> None:
    text = (report / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 17
    for link in links:
        assert not link.startswith("/") and (report / link).is_file(), link
    assert text.index("**Table 1.**") < text.index("| ")


def test_bad_paths_fail_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main([str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no job directories" in capsys.readouterr().err
    assert not out.exists()


def test_help_describes_inputs_and_outputs(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--out DIR" in text and "report.html" in text and "recursively" in text
    for name in ("batch_time.{md,tex,csv}", "loss-vs-sequences", "final-loss-vs-budget"):
        assert name in text, name


def test_jobs_with_almost_nothing_still_make_a_report(tmp_path) -> None:
    (tmp_path / "s" / "weird").mkdir(parents=True)
    (tmp_path / "s" / "weird" / "metrics.csv").write_text("epoch,step,val_ppl\n")
    (tmp_path / "s" / "3-lstm-adam").mkdir()
    (tmp_path / "s" / "3-lstm-adam" / "summary.json").write_text(
        '{"status": "running", "model_label": "LSTM", "model_rank": 2}'  # a job's first record
    )
    write_job(tmp_path / "s", "4-gru-sgd", rows=None, summary=None)  # config only
    out = tmp_path / "out"
    assert main([str(tmp_path / "s"), "--out", str(out), "-q"]) == 0
    text = (out / "results.md").read_text()
    assert "| LSTM " in text and "| running " in text and "| unknown " in text
    assert [p.name for p in (out / "figures").glob("*.png")] == ["overview.png"]
