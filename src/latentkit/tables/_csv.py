"""CSV and TSV files on pyarrow's multi-threaded reader.

The first non-blank line is read here, to decide whether it is a header (the rule in
`latentkit.tables`); pyarrow reads the rest from its byte offset. Every column is read as
float64, except those that hold text in the first lines (read as text and converted, or
refused, by `_columns`); a file whose later lines break that guess is read again as text.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from latentkit.exceptions import InvalidInputError

from ._columns import MISSING_TOKENS, table_to_data
from ._record import Data, TableOptions

#: bytes read to find the first line and sample the column types
_HEAD_BYTES = 1 << 22
_SAMPLE_LINES = 100
_INTEGER = re.compile(r"^[+-]?\d+$")


def _case_variants(token: str) -> set[str]:
    letters = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in token]
    return {"".join(chars) for chars in itertools.product(*letters)}


#: MISSING_TOKENS in every mix of upper and lower case (pyarrow compares exactly)
NULL_VALUES = sorted(set().union(*(_case_variants(token) for token in MISSING_TOKENS)))


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_TOKENS


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return _is_missing(cell)
    return True


def _lines(head: bytes, start: int):
    """(start, end, text) of each line of `head` from byte `start`."""
    while start < len(head):
        end = head.find(b"\n", start)
        end = len(head) if end < 0 else end + 1
        yield start, end, head[start:end].decode("utf-8", "replace").rstrip("\r\n")
        start = end


def _first_line(head: bytes) -> tuple[int, int, int, str] | None:
    """(start, end, line number, text) of the first line that is not blank, or None."""
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    for number, (begin, end, text) in enumerate(_lines(head, start), 1):
        if text.strip():
            return begin, end, number, text
    return None


def _save_as_utf8(encoding: str) -> str:
    """How to fix a file that is not UTF-8 (probably in `encoding`): every encoding error
    ends with it."""
    return ("latentkit reads CSV files as UTF-8. Save the file as UTF-8 (in Excel: 'CSV "
            f"UTF-8'; in a shell: iconv -f {encoding} -t UTF-8 old.csv > new.csv, naming the "
            "file's real encoding), or read it in Python with pandas.read_csv(path, "
            f"encoding={encoding.lower()!r}) and pass the DataFrame.")


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _wide_text_error(path: Path, head: bytes) -> InvalidInputError | None:
    """The error for UTF-16/32 text (a byte-order mark, or NUL bytes in the first line,
    which UTF-8 text never has), or None."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return InvalidInputError(f"{path} is {name} text (it starts with a {name} "
                                     f"byte-order mark), not UTF-8. {_save_as_utf8(name)}")
    if b"\x00" in head.split(b"\n", 1)[0]:
        return InvalidInputError(f"{path} has NUL bytes in its first line: it is not UTF-8 "
                                 f"text (probably UTF-16). {_save_as_utf8('UTF-16')}")
    return None


def _utf8_error(path: Path, buffer: pa.Buffer) -> InvalidInputError | None:
    """The error that names the line and byte of the first invalid UTF-8 sequence in
    `buffer` (read in 1 MiB steps with an incremental decoder), or None when it is valid."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    step, lines = 1 << 20, 1
    for start in range(0, buffer.size, step):
        chunk = buffer.slice(start, min(step, buffer.size - start)).to_pybytes()
        pending = decoder.getstate()[0]  # the bytes of a sequence cut by the last step
        try:
            decoder.decode(chunk, final=start + step >= buffer.size)
        except UnicodeDecodeError as error:
            at = error.start - len(pending)
            byte = pending[error.start] if at < 0 else chunk[at]
            line = lines + chunk.count(b"\n", 0, max(at, 0))
            return InvalidInputError(
                f"{path} is not UTF-8 text: line {line} has the byte 0x{byte:02X}, which "
                "UTF-8 does not allow there (the file was probably saved as "
                f"Windows-1252/Latin-1 or another encoding). {_save_as_utf8('CP1252')}")
        lines += chunk.count(b"\n")
    return None


def _delimiter(path: Path, sample: list[str]) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff("\n".join(sample), delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _sequence(cells: list[str]) -> bool:
    """Whether `cells` are the integers 0..D-1 or 1..D (pandas' default column names)."""
    if not cells or not all(_INTEGER.match(cell) for cell in cells):
        return False
    values = [int(cell) for cell in cells]
    return values in (list(range(len(cells))), list(range(1, len(cells) + 1)))


def header_kind(cells: list[str]) -> str | None:
    """'text' (a cell is not a number), 'index' (a blank cell, then 0..D-1 or 1..D: pandas'
    names over its index column), 'sequence' (0..D-1 or 1..D), or None (a row of data)."""
    cells = [cell.strip() for cell in cells]
    if not all(_is_number(cell) for cell in cells):
        return "text"
    if len(cells) > 1 and cells[0] == "" and _sequence(cells[1:]):
        return "index"
    return "sequence" if _sequence(cells) else None


def _text_columns(rows: list[list[str]], width: int) -> set[int]:
    """Columns whose sampled cells include one that is not a number."""
    return {j for row in rows for j, cell in enumerate(row[:width]) if not _is_number(cell)}


def _content_end(buffer: pa.Buffer) -> int:
    """The size of `buffer` without its trailing blank lines (spaces, tabs, line breaks)."""
    end = buffer.size
    while end > 0:
        start = max(0, end - 4096)
        tail = buffer.slice(start, end - start).to_pybytes()
        kept = len(tail.rstrip(b" \t\r\n"))
        if kept:
            return start + kept
        end = start
    return 0


def _read_body(buffer: pa.Buffer, offset: int, width: int, delimiter: str,
               text_columns: set[int] | None) -> pa.Table:
    """Rows from byte `offset`: float64 columns, text for `text_columns` (all when None).

    A line with no characters is a row of missing values (pyarrow reads it so when empty
    lines are not ignored): pandas writes NaN so in a one-column file, and in a wider file
    the row keeps its place. Blank lines at the end of a wider file are no rows."""
    names = [f"c{j}" for j in range(width)]
    types = {name: pa.string() if text_columns is None or j in text_columns else pa.float64()
             for j, name in enumerate(names)}
    end = _content_end(buffer) if width > 1 else buffer.size
    return pa_csv.read_csv(
        pa.BufferReader(buffer.slice(offset, max(end - offset, 0))),
        read_options=pa_csv.ReadOptions(column_names=names),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(column_types=types, null_values=NULL_VALUES,
                                              strings_can_be_null=True,
                                              quoted_strings_can_be_null=True))


def _body_lines(buffer: pa.Buffer, offset: int):
    """(line number relative to offset, text) of each line from `offset`: each is a row
    (an empty one of missing values), for the line numbers of error messages."""
    text = buffer.slice(offset).to_pybytes().decode("utf-8", "replace")
    return enumerate(line.rstrip("\r") for line in text.split("\n"))


def _ragged(path: Path, buffer, offset: int, first: int, width: int, delimiter: str):
    for number, line in _body_lines(buffer, offset):
        if line == "":
            continue  # a row of missing values
        if not line.strip():
            return InvalidInputError(
                f"{path}, line {first + number} holds only spaces: delete it, or write a row "
                f"of missing values as {delimiter * (width - 1)!r} (a row is never dropped).")
        fields = len(next(csv.reader([line], delimiter=delimiter), [""]))
        if fields != width:
            return InvalidInputError(f"{path}, line {first + number}: {fields} fields where "
                                     f"the first row has {width}.")
    return None


def _read_rows(path: Path, buffer, offset: int, first: int, width: int, delimiter: str,
               text_columns: set[int]) -> pa.Table:
    """The rows from `offset` (line `first`), read again as text if the guess was wrong."""
    try:
        try:
            return _read_body(buffer, offset, width, delimiter, text_columns)
        except pa.ArrowInvalid as error:
            if "conversion error" not in str(error):
                raise
            return _read_body(buffer, offset, width, delimiter, None)
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise InvalidInputError(f"{path} has a header row but no rows of data.") from None
        encoding = _utf8_error(path, buffer) if "UTF8" in str(error) else None
        if encoding is not None:
            raise encoding from None
        ragged = _ragged(path, buffer, offset, first, width, delimiter)
        if ragged is not None:
            raise ragged from None
        raise InvalidInputError(f"{path} is not a readable CSV file ({error}).") from None


def _all_whole(table: pa.Table) -> bool:
    for column in table.columns:
        if not pa.types.is_floating(column.type):
            return False
        valid = pc.drop_null(column).to_numpy()
        valid = valid[np.isfinite(valid)]
        if not np.all(valid == np.round(valid)):
            return False
    return True


def _names(cells: list[str], path: Path, notes: list[str]) -> list[str]:
    """Header cells as pandas names them: `Unnamed: j` for a blank one, `a.1` for the
    second `a` (with a note)."""
    names, seen = [], set()
    for j, cell in enumerate(cells):
        name = base = cell.strip() or f"Unnamed: {j}"
        copy = 0
        while name in seen:
            copy += 1
            name = f"{base}.{copy}"
        if copy:
            notes.append(f"{path.name}: the header names {base!r} more than once; column "
                         f"{j + 1} is read as {name!r}.")
        names.append(name)
        seen.add(name)
    return names


def read_csv(path: str | Path, options: TableOptions | None = None, *,
             delimiter: str | None = None) -> Data:
    """A CSV or TSV file (delimiter: tab for .tsv, else a comma, semicolon or tab, detected);
    the header rule and the missing values are those of `latentkit.tables`."""
    path, options = Path(path), options or TableOptions()
    buffer = pa.py_buffer(b"")
    if path.stat().st_size:
        with pa.memory_map(str(path)) as source:  # the buffer keeps the mapping alive
            buffer = source.read_buffer()
    head = buffer.slice(0, min(_HEAD_BYTES, buffer.size)).to_pybytes()
    wide = _wide_text_error(path, head)
    if wide is not None:
        raise wide
    found = _first_line(head)
    if found is None:
        raise InvalidInputError(f"{path} is empty: it has no rows of data.")
    start, end, line, text = found
    try:  # the first line (the header's names) must be UTF-8 too
        head[start:end].decode("utf-8")
    except UnicodeDecodeError:
        encoding = _utf8_error(path, buffer)  # None: a line cut at _HEAD_BYTES
        if encoding is not None:
            raise encoding from None
    sample = [text, *(t for _, _, t in itertools.islice(_lines(head, end), _SAMPLE_LINES))]
    delimiter = delimiter or _delimiter(path, sample)
    rows = list(csv.reader(sample, delimiter=delimiter))
    cells, width = rows[0], len(rows[0])
    kind = header_kind(cells) if options.header is None else ("given" if options.header
                                                                else None)
    texts = _text_columns(rows if kind is None else rows[1:], width)
    table = _read_rows(path, buffer, end if kind else start, line + (1 if kind else 0), width,
                       delimiter, texts)
    notes: list[str] = []
    if kind == "sequence" and _all_whole(table):
        kind, table = None, _read_rows(path, buffer, start, line, width, delimiter, texts)
    elif kind == "sequence":
        notes.append(f"{path.name}: the first row ({','.join(cells)}) is read as column "
                     f"names; pass --no-header (header=False) to read it as data.")
    if table.num_rows == 0:
        raise InvalidInputError(f"{path} has a header row but no rows of data.")
    names = _names(cells, path, notes) if kind else None
    body = line + 1 if kind else line

    def where(row: int) -> str:  # every line is a row (an empty one of missing values)
        return f"{path}, line {body + row}"

    return table_to_data(table, names, options, name=path.name, source=str(path),
                         where=where, notes=tuple(notes))
