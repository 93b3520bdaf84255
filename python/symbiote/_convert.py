"""Conversions at the edge of the extension module: keyword arguments into the CLI's flags, and
the CSV text the CLI writes (summary.csv, timeline.csv, requests.csv) into tables: pandas
DataFrames, pyarrow Tables (`tables="arrow"`) or lists of dicts."""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

Record = Dict[str, Any]


def flags(options: Mapping[str, Any]) -> List[str]:
    """`{"deadline_h": 6, "gpus": ["l4", "h100"]}` -> `["--deadline-h=6", "--gpus=l4,h100"]`.

    None and False leave a flag out (so the CLI's default applies), True gives a bare flag and a
    list is joined with commas, as the CLI's comma-separated flags take it. `--flag=value` keeps
    a value that starts with `-` from reading as a flag.
    """
    argv: List[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv.append(f"{flag}={','.join(text(v) for v in value)}")
        else:
            argv.append(f"{flag}={text(value)}")
    return argv


def text(value: Any) -> str:
    """One flag value as the CLI reads it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def seeds(value: Union[None, int, str, Sequence[int]]) -> Optional[str]:
    """`--seeds`: an int, a list of ints, or the CLI's own text (`1..8`, `1,5,9`)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return ",".join(str(int(s)) for s in value)


def percentiles(value: Union[None, str, Sequence[float]]) -> Optional[str]:
    """`--percentiles`: a list of numbers or the CLI's text (`50,90,95,99`)."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(p) for p in value)


def slo(value: Union[None, str, Mapping[str, float]]) -> Optional[str]:
    """`--slo`: `{"p99_ttft_ms": 2000}` or the CLI's text (`p99_ttft_ms=2000,p99_itl_ms=100`)."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(f"{metric}={target}" for metric, target in value.items())


def _cell(value: str) -> Any:
    """A CSV cell as a number where it reads as one; an empty cell is None."""
    if value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _pandas(tables: str) -> Any:
    if tables == "records":
        return None
    try:
        import pandas
    except ImportError:
        if tables == "pandas":
            raise
        return None
    return pandas


def _check(tables: str) -> None:
    if tables not in ("auto", "pandas", "records", "arrow"):
        raise ValueError(f"tables must be 'auto', 'pandas', 'arrow' or 'records'; got {tables!r}")


def _arrow(csv_text: str) -> Any:
    """One CSV as a pyarrow Table, name columns as strings (`tables="arrow"`)."""
    try:
        import pyarrow
        import pyarrow.csv
    except ImportError as e:
        raise ImportError("tables='arrow' needs pyarrow: pip install pyarrow (or use tables='auto')") from e
    types = {name: pyarrow.string() for name in _TEXT_COLUMNS}
    options = pyarrow.csv.ConvertOptions(column_types=types)
    return pyarrow.csv.read_csv(io.BytesIO(csv_text.encode()), convert_options=options)


# Columns that hold names, read as text even where a name looks like a number.
_TEXT_COLUMNS = {"scenario": str, "case": str, "outcome": str}


def table(csv_text: str, tables: str) -> Any:
    """One CSV as a DataFrame (pandas, `tables` "auto" or "pandas") or a list of dicts."""
    _check(tables)
    if tables == "arrow":
        return _arrow(csv_text)
    pandas = _pandas(tables)
    if pandas is not None:
        return pandas.read_csv(io.StringIO(csv_text), dtype=_TEXT_COLUMNS)
    return [_record(row) for row in csv.DictReader(io.StringIO(csv_text))]


def _record(row: Mapping[str, str]) -> Record:
    return {k: (v if k in _TEXT_COLUMNS else _cell(v)) for k, v in row.items()}


def runs_table(runs: Sequence[Tuple[str, int, Optional[str]]], tables: str) -> Any:
    """Every run's CSV (timeline or requests) in one table, `case` and `seed` columns first."""
    _check(tables)
    present = [(case, seed, text) for case, seed, text in runs if text is not None]
    if tables == "arrow":
        import pyarrow

        parts = []
        for case, seed, text in present:
            part = _arrow(text)
            part = part.add_column(0, "seed", pyarrow.array([seed] * part.num_rows, pyarrow.int64()))
            parts.append(part.add_column(0, "case", pyarrow.array([case] * part.num_rows, pyarrow.string())))
        return pyarrow.concat_tables(parts) if parts else pyarrow.table({})
    pandas = _pandas(tables)
    if pandas is not None:
        frames = []
        for case, seed, text in present:
            frame = pandas.read_csv(io.StringIO(text))
            frame.insert(0, "seed", seed)
            frame.insert(0, "case", case)
            frames.append(frame)
        return pandas.concat(frames, ignore_index=True) if frames else pandas.DataFrame()
    records: List[Record] = []
    for case, seed, text in present:
        for row in csv.DictReader(io.StringIO(text)):
            records.append({"case": case, "seed": seed, **_record(row)})
    return records
