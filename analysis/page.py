"""The report pages: one self-contained HTML file and one Markdown file over the same content.

Assembles tables and figures that are already built; computes nothing about the jobs itself.
Table captions go above tables, figure captions below figures (IFT6135 A2, "Figures and Tables").
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .figures import FigureFile
from .formats import Table, to_html, to_markdown
from .internals import SampleFile

SECTIONS = (
    ("cells", "Cells: mean over seeds"),  # only with repeats (analysis.cell_figures)
    ("overview", "Overview"),
    ("experiment", "Learning curves of each experiment"),
    ("optimizer", "Validation curves by optimizer"),
    ("architecture", "Validation curves by architecture"),
    ("study", "Loss vs sequences and sequence budget"),  # only for sequence budgets (studies)
    (
        "internals",
        "Inside the models",
    ),  # only when lmexp.inspect.internals has run (analysis.internals)
)
OPTIONAL_SECTIONS = frozenset({"cells", "study", "internals"})  # shown only when they have figures

SAMPLES_HEADING = "Appendix: generated text"

# Lets a headless browser (and the tests) see that every embedded image decoded.
IMAGES_LOADED_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const ok = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = ok + "/" + images.length;
  document.body.dataset.loadMs = String(Math.round(performance.now()));  // navigation to load
});
</script>"""

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0 2em;font-size:.85em}
caption{caption-side:top;text-align:left;padding:.4em 0;max-width:1100px}
th,td{padding:.25em .6em;border-bottom:1px solid #ddd;white-space:nowrap}
th{border-bottom:2px solid #444}td:last-child{white-space:normal}
td.num,th.num{text-align:right}figure{margin:1.5em 0}img{max-width:100%}
figcaption{font-size:.9em;max-width:1000px}code{font-size:.9em}"""


@dataclass
class Content:
    """Everything a report page shows, in order."""

    title: str
    sources: list[str]
    tables: list[Table]
    figures: list[FigureFile]
    jobs: pd.DataFrame  # ordered, numbered (tables.order_jobs)
    samples: list[SampleFile] = field(default_factory=list)  # lmexp.inspect.generate's files
    explore: str = ""  # the interactive hyper-parameter view (analysis.explore), HTML only


def _status_counts(jobs: pd.DataFrame) -> str:
    counts = Counter(jobs["status"])
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _not_plotted(content: Content) -> list[str]:
    plotted = {j for f in content.figures if f.kind == "experiment" for j in f.job_ids}
    return [
        f"#{r.exp} {r.job_id} ({r.status})"
        for r in content.jobs.itertuples()
        if r.job_id not in plotted
    ]


def _sections(content: Content) -> list[tuple[str, str]]:
    """The sections to show: every standard one, the optional ones only when they have figures."""
    kinds = {f.kind for f in content.figures}
    return [(k, h) for k, h in SECTIONS if k not in OPTIONAL_SECTIONS or k in kinds]


def _numbered(content: Content) -> list[tuple[int, FigureFile]]:
    """Figures in section order, numbered 1..M as they appear on the page."""
    ordered = [f for kind, _ in SECTIONS for f in content.figures if f.kind == kind]
    return list(enumerate(ordered, start=1))


def compact_png(path: Path) -> bytes:
    """The figure as inlined in the page: 256 colours, no dithering (line plots on white lose
    nothing visible), about a third of the bytes, so a 500-job report stays under 10 MB. The
    PNG and PDF files keep full colour."""
    import io

    from PIL import Image

    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        out = io.BytesIO()
        reduced.save(out, "PNG", optimize=True)
    return out.getvalue()


def render_html(content: Content) -> str:
    """A single HTML file: images inlined as base64 data URIs so it can be mailed or archived."""
    esc = html.escape
    parts = [
        f"<h1>{esc(content.title)}</h1>",
        "<p>Sources: " + ", ".join(f"<code>{esc(s)}</code>" for s in content.sources) + "</p>",
        f"<p>{len(content.jobs)} jobs: {esc(_status_counts(content.jobs))}.</p>",
    ]
    for number, table in enumerate(content.tables, start=1):
        parts.append(to_html(table, number))
    if content.explore:
        parts.append(content.explore)
    missing = _not_plotted(content)
    if missing:
        parts.append("<p>Not plotted (no metrics rows): " + esc("; ".join(missing)) + ".</p>")
    numbered = _numbered(content)
    for kind, heading in _sections(content):
        parts.append(f"<h2>{esc(heading)}</h2>")
        for number, fig in (nf for nf in numbered if nf[1].kind == kind):
            data = base64.b64encode(compact_png(fig.png)).decode("ascii")
            parts.append(
                f'<figure id="{esc(fig.name)}"><img src="data:image/png;base64,{data}" '
                f'alt="{esc(fig.title)}"><figcaption><b>Figure {number}.</b> '
                f"{esc(fig.caption)}</figcaption></figure>"
            )
    if content.samples:
        parts.append(f"<h2>{esc(SAMPLES_HEADING)}</h2>")
        for sample in content.samples:  # each file folded: 40 samples would bury the page
            shown = "\n".join(sample.lines)
            parts.append(
                f"<details><summary><b>{esc(sample.job)}: {esc(sample.name)}</b> "
                f"({sample.total} samples)</summary><p><small>{esc(sample.header)}</small></p>"
                f"<pre>{esc(shown)}</pre></details>"
            )
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(content.title)}</title>\n<style>{CSS}</style>\n{IMAGES_LOADED_SCRIPT}\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def render_markdown(content: Content, page_dir: Path) -> str:
    """Markdown with figures referenced by path relative to `page_dir` (where it is written)."""
    lines = [
        f"# {content.title}",
        "",
        "Sources: " + ", ".join(f"`{s}`" for s in content.sources),
        "",
        f"{len(content.jobs)} jobs: {_status_counts(content.jobs)}.",
        "",
    ]
    for number, table in enumerate(content.tables, start=1):
        lines += [to_markdown(table, number), ""]
    missing = _not_plotted(content)
    if missing:
        lines += ["Not plotted (no metrics rows): " + "; ".join(missing) + ".", ""]
    numbered = _numbered(content)
    for kind, heading in _sections(content):
        lines += [f"## {heading}", ""]
        for number, fig in (nf for nf in numbered if nf[1].kind == kind):
            rel = fig.png.relative_to(page_dir).as_posix()
            pdf = fig.paths[1].relative_to(page_dir).as_posix()
            lines += [
                f"![Figure {number}: {fig.title}]({rel})",
                "",
                f"**Figure {number}.** {fig.caption} ([PDF]({pdf}))",
                "",
            ]
    if content.samples:
        lines += [f"## {SAMPLES_HEADING}", ""]
        for sample in content.samples:  # folded (<details> renders on GitHub and in editors)
            lines += [
                f"<details><summary><b>{sample.job}: {sample.name}</b> ({sample.total} "
                "samples)</summary>",
                "",
                sample.header,
                "",
                "```text",
                *sample.lines,
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines)
