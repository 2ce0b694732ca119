"""The one reader for every file a pipeline ingests.

Delimited text (any delimiter, quoting, escape, header or not, preamble, footer and comment lines,
CR/LF/CRLF records, multi-line fields, BOMs, gzip/zstd) read block by block with exact source line
numbers; encoding detection with per-record repair; declared or inferred schemas (YAML, ODCS field
names) with typed parsing; one reason-code vocabulary (:mod:`dotjoin.platform.quality.reasons`).
Pipelines declare schemas and plug-ins; they do not parse bytes themselves.
"""

from dotjoin.platform.files.dialect import Dialect, DialectOptions, sniff
from dotjoin.platform.files.errors import AmbiguousInputError, InputFileError
from dotjoin.platform.files.reader import Chunk, DelimitedReader, RawReject

__all__ = [
    "AmbiguousInputError",
    "Chunk",
    "DelimitedReader",
    "Dialect",
    "DialectOptions",
    "InputFileError",
    "RawReject",
    "sniff",
]
