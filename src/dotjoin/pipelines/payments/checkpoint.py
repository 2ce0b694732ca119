"""The embedded runner's checkpoints: the detector's card states and the bus offsets, on disk.

Two kinds of file, numbered by checkpoint (``seq``):

* ``delta-<seq>.pickle``: the cards changed since the previous checkpoint, the next offset of every
  partition and the counters. The stream's loop encodes the cards each batch changed
  (:func:`~.detector.encode_states`, MessagePack, ~2.5 µs a card) and the runner's checkpoint thread
  writes those chunks every ``checkpoint_s``, so a checkpoint never stops the stream to walk the
  state. Measured at 10,000 events/s: forking a large heap (the first design) slowed the batches
  after each checkpoint ~5x with copy-on-write faults, and a thread pickling a whole interval's cards
  held the GIL long enough to do the same;
* ``base-<seq>.pickle``: every card as of ``seq``, written by **compaction**, a separate process
  (``python -m dotjoin.pipelines.payments.checkpoint DIR SEQ``) that merges the newest base and the
  deltas up to ``seq`` from the files alone, then deletes what the new base holds.

Each file is a header pickle (offsets, counters, the chunks' sizes) followed by its chunks, each an
encoded ``{card: state}`` (a delta's: one per batch; a base's: :data:`CHUNK` cards each). Files are
written to a temporary name, fsynced and renamed, so a reader sees whole files only. Loading takes
the newest base and the deltas after it, chunk by chunk in order (a later card state overwrites an
earlier one).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from dotjoin.exceptions import TerminalError
from dotjoin.pipelines.payments.detector import CardStates, Counters, Detector, decode_states, encode_states

CHECKPOINT_FORMAT = 3  # 1: one pickle per file, written by a forked child; 2: pickled chunks
CHUNK = 2000  # cards per chunk of a base
Offsets = dict[tuple[str, int], int]


def _seq(path: Path) -> int:
    return int(path.stem.split("-")[1])


class CheckpointStore:
    """The checkpoint files of one directory (see the module's docstring)."""

    def __init__(self, directory: Path, *, compact_every: int = 120) -> None:
        self.directory = directory
        self.compact_every = compact_every
        self.seq = 0  # the last checkpoint numbered
        self.base_seq = 0  # the newest base (0: none)

    def advance(self) -> int:
        """Number the next checkpoint."""
        self.seq += 1
        return self.seq

    def write(self, seq: int, chunks: list[bytes], offsets: Offsets, counters: dict[str, Any]) -> None:
        """Write delta ``seq``: the encoded chunks of the cards changed since the previous checkpoint
        (:func:`~.detector.encode_states`, in order) and the offsets."""
        self._write(f"delta-{seq:012d}.pickle", chunks, {"offsets": offsets, "counters": counters})

    def compaction_due(self) -> bool:
        return self.seq - self.base_seq >= self.compact_every

    def start_compaction(self, upto: int) -> subprocess.Popen[bytes]:
        """Compact up to checkpoint ``upto`` in a separate process (it reads files only)."""
        self.base_seq = upto
        command = [sys.executable, "-m", __name__, str(self.directory), str(upto)]
        return subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def compact(self, upto: int) -> None:
        """Merge the newest base and the deltas up to ``upto`` into ``base-<upto>``; delete what it holds."""
        files = [f for f in self._chain() if _seq(f) <= upto]
        if not files or _seq(files[-1]) != upto:
            raise TerminalError(f"{self.directory}: no checkpoint {upto} to compact")
        cards: CardStates = {}
        header: dict[str, Any] = {}
        for f in files:
            header = self._read(f, cards)
        items = list(cards.items())
        chunks = [encode_states(dict(items[i : i + CHUNK])) for i in range(0, len(items), CHUNK)]
        header = {"offsets": header["offsets"], "counters": header["counters"]}
        self._write(f"base-{upto:012d}.pickle", chunks, header)
        for old in self.directory.glob("*.pickle"):
            if _seq(old) < upto or old.name == f"delta-{upto:012d}.pickle":
                old.unlink(missing_ok=True)
        self.base_seq = upto

    def load(self, detector: Detector) -> Offsets | None:
        """Restore the newest base and the deltas after it into ``detector``; the offsets, or None."""
        for stale in self.directory.glob(".*.tmp"):  # a writer killed before its rename
            stale.unlink(missing_ok=True)
        for _ in range(3):  # a compaction left over from a killed run may delete files as we read
            try:
                files = self._chain()
                if not files:
                    return None
                cards: CardStates = {}
                header: dict[str, Any] = {}
                for f in files:
                    header = self._read(f, cards)
                break
            except FileNotFoundError:
                continue
        else:
            raise TerminalError(f"{self.directory}: checkpoint files keep disappearing; is a runner alive?")
        detector.restore_cards(cards)
        detector.counters = Counters(**header["counters"])
        self.seq = _seq(files[-1])
        self.base_seq = _seq(files[0]) if files[0].name.startswith("base-") else 0
        return dict(header["offsets"])

    def _chain(self) -> list[Path]:
        """The newest base (if any) and the deltas after it, in order."""
        files = sorted(self.directory.glob("*.pickle"), key=_seq)
        bases = [f for f in files if f.name.startswith("base-")]
        after = _seq(bases[-1]) if bases else 0
        return bases[-1:] + [f for f in files if f.name.startswith("delta-") and _seq(f) > after]

    def _write(self, name: str, chunks: list[bytes], header: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        with tmp.open("wb") as fh:
            sizes = [len(c) for c in chunks]
            pickle.dump({"format": CHECKPOINT_FORMAT, "chunks": sizes, **header}, fh, protocol=5)
            fh.writelines(chunks)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.directory / name)

    def _read(self, path: Path, cards: CardStates) -> dict[str, Any]:
        """Add the file's cards to ``cards``; its header."""
        with path.open("rb") as fh:
            header = pickle.load(fh)  # noqa: S301 - the runner's own checkpoint files
            if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
                raise TerminalError(f"{path}: a checkpoint of another format; move {self.directory} away")
            for size in header["chunks"]:
                cards.update(decode_states(fh.read(size)))
        return header


def main(argv: list[str]) -> int:
    """Compaction: ``python -m dotjoin.pipelines.payments.checkpoint DIR SEQ``."""
    directory, upto = Path(argv[0]), int(argv[1])
    try:
        CheckpointStore(directory).compact(upto)
    except (OSError, TerminalError) as exc:
        print(f"checkpoint compaction failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
