"""Table files: Markdown, LaTeX (booktabs), HTML and CSV renderings of one `Table`.

Formats only: which rows, columns and bold cells a table has is decided in `analysis.tables`.
Captions always precede the table body (IFT6135 assignment 2: table captions go above).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

MISSING = "—"  # a value not recorded (LaTeX: --)


@dataclass
class Table:
    """A rendered table: display cells plus which are bold, and the raw frame for CSV."""

    name: str
    caption: str
    headers: list[str]
    cells: list[list[str]]
    bold: set[tuple[int, int]]
    numeric: list[bool]
    raw: pd.DataFrame
    code: int | None = None  # index of a column of shell commands (typeset as code)


def _marked(
    table: Table,
    wrap: Callable[[str], str],
    escape: Callable[[str], str],
    code: Callable[[str], str] = str,
) -> list[list[str]]:
    """Escaped cells, bold ones wrapped by `wrap` and the command column by `code`."""
    rows = []
    for i, row in enumerate(table.cells):
        cells = [wrap(escape(c)) if (i, j) in table.bold else escape(c) for j, c in enumerate(row)]
        if table.code is not None:
            cells[table.code] = code(cells[table.code])
        rows.append(cells)
    return rows


def to_markdown(table: Table, number: int | None = None) -> str:
    """Caption paragraph above a pipe table; bold as `**…**`."""
    escape = lambda s: s.replace("|", "\\|")  # noqa: E731
    rows = _marked(table, lambda s: f"**{s}**", escape, lambda s: f"`{s}`")
    align = ["right" if n else "left" for n in table.numeric]
    body = tabulate(
        rows, headers=table.headers, tablefmt="pipe", colalign=align, disable_numparse=True
    )
    label = f"**Table {number}.** " if number else ""
    return f"{label}{table.caption}\n\n{body}\n"


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    MISSING: "--", "<": r"\textless{}", ">": r"\textgreater{}",
}  # fmt: skip


def latex_escape(text: str) -> str:
    """Text safe inside LaTeX: the ten special characters and the em dash replaced."""
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    """A booktabs `table` float with the caption above the tabular and bold via `\\textbf`."""
    spec = ["r" if n else "l" for n in table.numeric]
    if table.code is not None:  # long commands wrap in a fixed-width typewriter column
        spec[table.code] = ">{\\ttfamily\\raggedright\\arraybackslash}p{0.6\\linewidth}"
    rows = _marked(table, lambda s: f"\\textbf{{{s}}}", latex_escape)
    lines = [
        "% needs \\usepackage{booktabs,array}",
        "\\begin{table}[htbp]",
        "\\centering",
        "\\small",
        f"\\caption{{{latex_escape(table.caption)}}}",
        f"\\label{{tab:{table.name}}}",
        f"\\begin{{tabular}}{{{''.join(spec)}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in table.headers) + " \\\\",
        "\\midrule",
        *(" & ".join(row) + " \\\\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def to_html(table: Table, number: int | None = None) -> str:
    """An HTML table whose <caption> (rendered above it) carries the table number."""
    rows = _marked(table, lambda s: f"<strong>{s}</strong>", html.escape, "<code>{}</code>".format)
    cls = lambda j: ' class="num"' if table.numeric[j] else ""  # noqa: E731
    head = "".join(f"<th{cls(j)}>{html.escape(h)}</th>" for j, h in enumerate(table.headers))
    body = "\n".join(
        "<tr>" + "".join(f"<td{cls(j)}>{cell}</td>" for j, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    label = f"<b>Table {number}.</b> " if number else ""
    return (
        f'<table id="{table.name}">\n<caption>{label}{html.escape(table.caption)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
    )


def write_table(table: Table, out_dir: Path, number: int | None = None) -> list[Path]:
    """`<name>.md`, `<name>.tex` and `<name>.csv` (raw numbers) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")]
    paths[0].write_text(to_markdown(table, number), encoding="utf-8")
    paths[1].write_text(to_latex(table), encoding="utf-8")
    table.raw.to_csv(paths[2], index=False)
    return paths
