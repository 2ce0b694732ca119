"""The online feature store: every card's and merchant's :class:`EntityHistory` in a key-value store.

One key per entity (``card:<id>``, ``merchant:<id>``), its state as MessagePack; a scoring call reads two
keys and evaluates the features at its own time (:meth:`OnlineStore.features_at`). The streaming job
writes the entities a batch changed together with its consumer offsets (``offset:<topic>:<partition>``)
in one ``put_many`` — atomic on both stores — so after a crash it resumes exactly where the state is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from dotjoin.pipelines.features.definitions import FEATURES, Entity
from dotjoin.pipelines.features.online import EntityHistory
from dotjoin.platform.kv import KeyValueStore

_Sums = list[list[float]]
_State = tuple[list[int], list[int], list[int], int, int | None, _Sums, int | None, _Sums, dict[str, int]]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_State).decode


def dump(history: EntityHistory) -> bytes:
    e, f = history.everything, history.folded
    state = (history.times, history.cents, history.running, history.base, e.anchor, e.sums, f.anchor, f.sums)
    return _encode((*state, history.recent_ids))


def load(data: bytes) -> EntityHistory:
    times, cents, running, base, e_anchor, e_sums, f_anchor, f_sums, recent_ids = _decode(data)
    history = EntityHistory()
    history.recent_ids = recent_ids
    history.times, history.cents, history.running, history.base = times, cents, running, base
    history.everything.anchor, history.everything.sums = e_anchor, e_sums
    history.folded.anchor, history.folded.sums = f_anchor, f_sums
    return history


def _key(entity: Entity, entity_id: str) -> str:
    return f"{entity}:{entity_id}"


class OnlineStore:
    """Entity histories in ``kv``: read by scoring, written by the streaming job."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv

    def histories(self, keys: Iterable[tuple[Entity, str]]) -> dict[tuple[Entity, str], EntityHistory]:
        """The stored histories of ``keys`` (a new, empty one where there is none)."""
        wanted = list(dict.fromkeys(keys))
        found = self.kv.get_many([_key(e, i) for e, i in wanted])
        return {k: load(v) if v is not None else EntityHistory() for k, v in zip(wanted, found, strict=True)}

    def save(self, histories: Mapping[tuple[Entity, str], EntityHistory], offsets: Mapping[str, int]) -> None:
        """Write ``histories`` and the consumer ``offsets`` (``topic:partition`` → next offset) at once."""
        items = {_key(e, i): dump(h) for (e, i), h in histories.items()}
        items.update({f"offset:{stream}": str(offset).encode() for stream, offset in offsets.items()})
        self.kv.put_many(items)

    def offsets(self, streams: Iterable[str]) -> dict[str, int]:
        """The next offset to apply per ``topic:partition`` (absent: nothing applied yet)."""
        names = list(streams)
        found = self.kv.get_many([f"offset:{s}" for s in names])
        return {s: int(v) for s, v in zip(names, found, strict=True) if v is not None}

    def features_at(self, *, card_id: str, merchant_id: str, t: int) -> dict[str, float | int | None]:
        """Every feature (in :data:`FEATURES` order) of this card and merchant as of ``t``: two reads."""
        got = self.histories([("card", card_id), ("merchant", merchant_id)])
        values = got[("card", card_id)].values("card", t) | got[("merchant", merchant_id)].values(
            "merchant", t
        )
        return {f.name: values[f.name] for f in FEATURES}
