"""`ResultTable`: a small table of results (model selection, command-line summaries) that
prints as aligned text, Markdown or HTML."""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


class ResultTable:
    """Rows of values under named columns.

    columns : the column names; rows : sequences with one value per column; formats :
    optional {column: format spec} for numbers (default ".6g" for floats); title : an
    optional line printed above the text form and used as the HTML caption.

    `str(table)` is aligned plain text (numbers right-aligned), `to_markdown()` a GitHub
    Markdown table, `to_html()` an HTML <table> with escaped cells; `column(name)` returns a
    column as an np.ndarray and `rows` the list of row tuples.
    """

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence] = (), *,
                 formats: Mapping[str, str] | None = None, title: str | None = None):
        self.columns = tuple(str(c) for c in columns)
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"column names must be distinct; got {self.columns}.")
        unknown = set(formats or {}) - set(self.columns)
        if unknown:
            raise ValueError(f"formats name unknown columns {sorted(unknown)}; the columns are "
                             f"{list(self.columns)}.")
        self.formats = dict(formats or {})
        self.title = title
        self.rows: list[tuple] = []
        for row in rows:
            self.add_row(row)

    def add_row(self, row: Sequence | Mapping) -> None:
        """Append one row: a sequence in column order, or a mapping {column: value}."""
        if isinstance(row, Mapping):
            missing = [c for c in self.columns if c not in row]
            if missing or len(row) != len(self.columns):
                raise ValueError(f"a row mapping must have exactly the columns "
                                 f"{list(self.columns)}; got {list(row)}.")
            row = [row[c] for c in self.columns]
        row = tuple(row)
        if len(row) != len(self.columns):
            raise ValueError(f"a row must have {len(self.columns)} values "
                             f"({', '.join(self.columns)}); got {len(row)}.")
        self.rows.append(row)

    def column(self, name: str) -> np.ndarray:
        """The values of column `name` : (n_rows,)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {list(self.columns)}.")
        i = self.columns.index(name)
        return np.asarray([row[i] for row in self.rows])

    def __len__(self) -> int:
        return len(self.rows)

    def _cell(self, column: str, value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, numbers.Integral):
            return format(int(value), self.formats.get(column, "d"))
        if isinstance(value, numbers.Real):
            if math.isnan(value):
                return "nan"
            return format(float(value), self.formats.get(column, ".6g"))
        return str(value)

    def _cells(self) -> list[list[str]]:
        return [[self._cell(c, v) for c, v in zip(self.columns, row)] for row in self.rows]

    def _numeric(self) -> list[bool]:
        """Whether each column holds only numbers (bools excluded): right-aligned."""
        def is_number(v):
            return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
        return [all(is_number(row[i]) or row[i] is None for row in self.rows) and
                bool(self.rows) for i in range(len(self.columns))]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        right = self._numeric()

        def line(values):
            return "  ".join(v.rjust(w) if r else v.ljust(w)
                             for v, w, r in zip(values, widths, right)).rstrip()
        out = [self.title] if self.title else []
        out += [line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in cells]
        return "\n".join(out)

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table (numeric columns right-aligned)."""
        def esc(text):
            return text.replace("|", "\\|")
        rule = ["---:" if r else "---" for r in self._numeric()]
        lines = ["| " + " | ".join(esc(c) for c in self.columns) + " |",
                 "| " + " | ".join(rule) + " |"]
        lines += ["| " + " | ".join(esc(v) for v in r) + " |" for r in self._cells()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML <table> (cells escaped; numeric columns with class="num")."""
        right = self._numeric()
        parts = ['<table class="latentkit-table">']
        if self.title:
            parts.append(f"<caption>{html.escape(self.title)}</caption>")
        parts.append("<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>"
                                             for c in self.columns) + "</tr></thead>")
        parts.append("<tbody>")
        for row in self._cells():
            tds = "".join(f'<td class="num">{html.escape(v)}</td>' if r
                          else f"<td>{html.escape(v)}</td>" for v, r in zip(row, right))
            parts.append(f"<tr>{tds}</tr>")
        parts.append("</tbody></table>")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"ResultTable(columns={list(self.columns)}, n_rows={len(self.rows)})"
