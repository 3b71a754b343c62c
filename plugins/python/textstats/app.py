"""The `textstats` plugin: statistics about text and CSV files in granted directories.

Written in Python and built with `warden build` (componentize-py; see ../build.sh). It uses plain `open()`:
the directories the operator granted are WASI preopens, the only ones that exist, and the
host refuses `..` escapes and symbolic links that point out of them. This code only turns
those refusals into clear messages.

Each exported WIT interface is a class named after it (`analyze` -> `Analyze`); a WIT
`result<T, string>` is returned as T or raised as `Err(message)`.
"""

import csv
import io
import math
from collections import Counter
from typing import List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.analyze import Column, ColumnKind, Table, TextSummary, WordCount
from wit_world.imports import host

# Files larger than this are refused: a tool answer should stay small and fast.
MAX_FILE_BYTES = 8 * 1024 * 1024
DEFAULT_TOP = 10
MAX_TOP = 100


def read_text(path: str) -> tuple[str, int]:
    """The file's text and size in bytes, or `Err` with a message fit for the agent."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise Err(f"not found: {path} (only the granted directories exist)")
    except IsADirectoryError:
        raise Err(f"is a directory: {path}")
    except PermissionError:
        raise Err(f"not permitted: {path} is outside the granted directories")
    except OSError as error:
        raise Err(f"cannot read {path}: {error.strerror or error}")
    if len(data) > MAX_FILE_BYTES:
        raise Err(f"too large: {path} is over {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8"), len(data)
    except UnicodeDecodeError:
        raise Err(f"not UTF-8 text: {path}")


def parse_number(value: str) -> Optional[float]:
    """The value as a finite number, or None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def is_integer(value: str) -> bool:
    try:
        int(value)
        return True
    except ValueError:
        return False


def summarize_column(name: str, values: List[str]) -> Column:
    filled = [v.strip() for v in values if v.strip()]
    numbers = [parse_number(v) for v in filled]
    if not filled:
        kind = ColumnKind.EMPTY
    elif any(n is None for n in numbers):
        kind = ColumnKind.TEXT
    elif all(is_integer(v) for v in filled):
        kind = ColumnKind.INTEGER
    else:
        kind = ColumnKind.NUMBER
    numeric = kind in (ColumnKind.INTEGER, ColumnKind.NUMBER)
    found = [n for n in numbers if n is not None] if numeric else []
    return Column(
        name=name,
        kind=kind,
        filled=len(filled),
        distinct=len(set(filled)),
        min=min(found) if found else None,
        max=max(found) if found else None,
        mean=sum(found) / len(found) if found else None,
    )


class Analyze(exports.Analyze):
    def text_stats(self, path: str, top: Optional[int]) -> TextSummary:
        text, size = read_text(path)
        limit = min(DEFAULT_TOP if top is None else top, MAX_TOP)
        words = text.split()
        counts = Counter(w.lower().strip(".,;:!?\"'()[]{}") for w in words)
        counts.pop("", None)
        # Most frequent first, then alphabetical. (`Counter.most_common(n)` would import
        # `heapq` lazily: only modules imported at build time are in the component.)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        host.log(host.Level.DEBUG, f"{len(words)} words in {path}")
        return TextSummary(
            lines=len(text.splitlines()),
            words=len(words),
            characters=len(text),
            bytes=size,
            top_words=[WordCount(word=w, count=c) for w, c in ranked],
        )

    def csv_summary(self, path: str, delimiter: Optional[str]) -> Table:
        delimiter = "," if delimiter is None else delimiter
        if len(delimiter) != 1:
            raise Err(f"delimiter must be one character, got {delimiter!r}")
        text, _ = read_text(path)
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        except csv.Error as error:
            raise Err(f"not valid CSV: {path}: {error}")
        if not rows:
            raise Err(f"empty file: {path} has no header row")
        header, data = rows[0], rows[1:]
        columns = [
            summarize_column(name, [row[i] if i < len(row) else "" for row in data])
            for i, name in enumerate(header)
        ]
        host.log(host.Level.INFO, f"{len(data)} rows, {len(header)} columns in {path}")
        return Table(rows=len(data), columns=columns)
