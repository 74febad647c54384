"""A small HTML report builder: titled sections of text, PNG figures and tables.

    report = Report("latentkit demo")
    report.add(Section("First section", "A model fitted to ...",
                       figures=["run/density.png", ("run/bic.png", "BIC against K")],
                       tables=[selection.table, [{"K": 2, "BIC": 2322.5}]]))
    report.write("run")        # -> run/index.html

`write` produces one self-contained page (inline CSS, no scripts) with a table of contents,
the date and the latentkit version; figures are referenced by paths relative to the page,
and a figure that lies outside the output folder is copied into it first.
"""

from __future__ import annotations

import datetime
import html
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; color: #222; line-height: 1.5; }
h1 { margin-bottom: 0.1em; } .meta { color: #666; margin-top: 0; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
nav { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 0.6em 1.2em; border-radius: 6px; }
nav ol { margin: 0.3em 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; flex: 1 1 440px; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; text-align: center; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; }
th { background: #f3f4f6; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
code { background: #f3f4f6; padding: 0.05em 0.3em; border-radius: 3px; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; }
footer { margin-top: 3em; color: #888; font-size: 0.85em; }
"""


def format_value(value) -> str:
    """A table cell: floats to 5 significant digits (one decimal from 100 up), booleans
    as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "—"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.5g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return format_value(value.item())
    return str(value)


def rows_to_html(rows, caption: str | None = None) -> str:
    """An HTML table from a list of dict rows (columns in first-seen order)."""
    rows = list(rows)
    names = list(dict.fromkeys(name for row in rows for name in row))
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(row.get(name, '')))}</td>"
                         for name in names) + "</tr>"
        for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text_to_html(text: str) -> str:
    """Paragraphs split on blank lines; `code` spans; a paragraph starting "Note:" is
    highlighted."""
    parts = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if not paragraph:
            continue
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(paragraph))
        css = ' class="note"' if paragraph.lower().startswith("note:") else ""
        parts.append(f"<p{css}>{body}</p>")
    return "\n".join(parts)


@dataclass
class Section:
    """One titled part of a report.

    text : plain text; blank lines separate paragraphs, `backticks` mark code.
    figures : PNG paths, or (path, caption) pairs.
    tables : ResultTable objects (anything with `to_html()`), lists of dict rows, or
        (caption, table) pairs.
    """

    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)


def _slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


class Report:
    """An HTML page of sections; `add` them, then `write(out_dir)`."""

    def __init__(self, title: str, intro: str = ""):
        self.title = title
        self.intro = intro
        self.sections: list[Section] = []

    def add(self, section: Section) -> Section:
        if not isinstance(section, Section):
            raise TypeError(f"Report.add expects a Section; got {type(section).__name__}.")
        self.sections.append(section)
        return section

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write out_dir/index.html (creating out_dir); returns its path."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        from latentkit import __version__

        taken: set[str] = set()
        slugs = [_slug(section.title, taken) for section in self.sections]
        toc = "".join(f'<li><a href="#{slug}">{html.escape(section.title)}</a></li>'
                      for slug, section in zip(slugs, self.sections))
        body = "\n".join(self._section_html(section, slug, out_dir)
                         for slug, section in zip(slugs, self.sections))
        now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(self.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{html.escape(self.title)}</h1>
<p class="meta">Generated {now} by latentkit {html.escape(__version__)}</p>
{_text_to_html(self.intro)}
<nav><strong>Contents</strong><ol>{toc}</ol></nav>
{body}
<footer>latentkit {html.escape(__version__)} &middot; {now}</footer>
</body>
</html>
"""
        path = out_dir / "index.html"
        path.write_text(page, encoding="utf-8")
        return path

    @staticmethod
    def _figure_href(figure, out_dir: Path) -> str:
        source = Path(figure)
        if not source.is_file():
            raise FileNotFoundError(f"report figure {source} does not exist.")
        root = out_dir.resolve()
        resolved = source.resolve()
        if not resolved.is_relative_to(root):
            target = root / "figures" / resolved.name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(resolved, target)
            resolved = target
        return resolved.relative_to(root).as_posix()

    def _section_html(self, section: Section, slug: str, out_dir: Path) -> str:
        parts = [f'<section id="{slug}">', f"<h2>{html.escape(section.title)}</h2>",
                 _text_to_html(section.text)]
        for table in section.tables:
            caption = None
            if isinstance(table, tuple) and len(table) == 2 and isinstance(table[0], str):
                caption, table = table
            if hasattr(table, "to_html"):
                if caption:
                    parts.append(f"<h3>{html.escape(caption)}</h3>")
                parts.append(table.to_html())
            elif isinstance(table, Mapping):
                parts.append(rows_to_html([table], caption))
            else:
                parts.append(rows_to_html(table, caption))
        if section.figures:
            parts.append('<div class="figures">')
            for figure in section.figures:
                path, caption = figure if isinstance(figure, tuple) else (figure, None)
                href = html.escape(self._figure_href(path, out_dir), quote=True)
                alt = html.escape(caption or Path(path).stem.replace("_", " "), quote=True)
                cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
                parts.append(f'<figure><img src="{href}" alt="{alt}">{cap}</figure>')
            parts.append("</div>")
        parts.append("</section>")
        return "\n".join(parts)


def text_table(rows: list[tuple[str, object]]) -> str:
    """Label / value pairs as aligned plain-text lines, for the terminal."""
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join(f"{label:<{width}}  {format_value(value)}" for label, value in rows)
