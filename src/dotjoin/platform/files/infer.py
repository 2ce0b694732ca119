"""Schema inference for a file with no schema: each column's type from a sample, with a confidence.

A column takes the narrowest type that every sampled non-null value parses as, in the order boolean
(only words such as true/false/yes/no, never 0/1), integer, number, date, timestamp, else string. A type
that all but a sliver parse as (at least :data:`MIN_SHARE`) is still chosen, with its confidence below 1:
the rest will be quarantined, and the written schema says so, so the user can decide. Nothing is ever
inferred as required or as a key: a sample cannot prove either.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dotjoin.platform.files.convert import _nulls, normalise, parse_column
from dotjoin.platform.files.dialect import Dialect, unique_names
from dotjoin.platform.files.schema import Property, Schema, Source, Table, TypeOptions, column_name

MIN_SHARE = 0.99
_CANDIDATES = ("boolean", "integer", "number", "date", "timestamp")
_BOOLEAN_WORDS = TypeOptions(trueValues=["true", "t", "yes", "y"], falseValues=["false", "f", "no", "n"])


def infer_property(name: str, header: str, values: pa.Array) -> Property:
    """The property of one column from its sampled text values."""
    base = Property(name=name, header=header if header != name else None)
    text = normalise(values, base)
    present = text.filter(pa.array(~_nulls(text, base)))
    if not len(present):
        return base.model_copy(update={"confidence": 0.0})
    for kind in _CANDIDATES:
        options = _BOOLEAN_WORDS if kind == "boolean" else TypeOptions()
        candidate = base.model_copy(update={"logicalType": kind, "logicalTypeOptions": options})
        _, ok, _ = parse_column(present, candidate)
        share = float(np.count_nonzero(ok)) / len(present)
        if share >= MIN_SHARE:
            return candidate.model_copy(update={"confidence": round(share, 4)})
    return base.model_copy(update={"confidence": 1.0})


def infer_schema(sample: pa.Table, dialect: Dialect | None, *, table: str, encoding: str | None) -> Schema:
    """A schema for ``table`` from the reader's first chunk (string columns named as in the file);
    ``dialect`` None: the file is JSON lines."""
    headers = list(sample.column_names)
    names = unique_names(tuple(column_name(h) for h in headers))
    properties = [
        infer_property(name, header, sample.column(header).combine_chunks())
        for name, header in zip(names, headers, strict=True)
    ]
    source = (
        Source(format="jsonl", encoding=encoding)
        if dialect is None
        else Source(
            format="delimited",
            delimiter=dialect.delimiter,
            quote=dialect.quote or "",
            escape=dialect.escape or "",
            header=dialect.header,
            skipLines=dialect.skip_lines,
            comment=dialect.comment or "",
            encoding=encoding,
            padShortRows=dialect.pad_short_rows,
        )
    )
    return Schema(name=table, source=source, schema=[Table(name=table, properties=properties, dedup="none")])
