"""The errors of the file reader: a file that cannot be read, or detection that cannot decide."""

from __future__ import annotations

from dotjoin.exceptions import DataError


class InputFileError(DataError):
    """A file that cannot be read as delimited text or JSON lines (the message names the file)."""


class AmbiguousInputError(InputFileError):
    """Detection could not decide with enough confidence; the message names the option that decides."""
