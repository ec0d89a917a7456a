"""The experiment report: Markdown and a self-contained-enough HTML page (figures as files).

Experiments produce :class:`Section` objects (text, a rate table, figures); this module only
formats them. HTML is written directly from the same sections, no Markdown converter needed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Section:
    """One experiment in the report. ``figures`` are paths relative to the report's folder."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def to_markdown(title: str, intro: str, sections: list[Section]) -> str:
    lines = [f"# {title}", "", intro, ""]
    for sec in sections:
        lines += [f"## {sec.key}: {sec.title}", ""]
        for p in sec.paragraphs:
            lines += [p, ""]
        if sec.table:
            cols = list(sec.table[0])
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + "---|" * len(cols))
            for row in sec.table:
                lines.append("| " + " | ".join(_cell(row.get(c)) for c in cols) + " |")
            lines.append("")
        for fig in sec.figures:
            lines += [f"![{sec.key}]({fig})", ""]
    return "\n".join(lines)


def to_html(title: str, intro: str, sections: list[Section]) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;}"
             "table{border-collapse:collapse}td,th{border:1px solid #aaa;padding:2px 8px;text-align:right}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>{esc(title)}</h1><p>{esc(intro)}</p>"]
    for sec in sections:
        parts.append(f"<h2>{esc(sec.key)}: {esc(sec.title)}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in sec.paragraphs]
        if sec.table:
            cols = list(sec.table[0])
            parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
            for row in sec.table:
                parts.append("<tr>" + "".join(f"<td>{esc(_cell(row.get(c)))}</td>" for c in cols) + "</tr>")
            parts.append("</table>")
        parts += [f"<p><img src='{esc(fig)}' alt='{esc(sec.key)}'></p>" for fig in sec.figures]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out: Path, title: str, intro: str, sections: list[Section]) -> Path:
    """Write ``report.md`` and ``report.html`` into ``out``; returns the Markdown path."""
    md = out / "report.md"
    md.write_text(to_markdown(title, intro, sections))
    (out / "report.html").write_text(to_html(title, intro, sections))
    return md
