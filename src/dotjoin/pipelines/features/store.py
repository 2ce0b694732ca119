"""The online feature store: every card's and merchant's :class:`EntityHistory` in a key-value store.

One key per entity (``card:<id>``, ``merchant:<id>``), its state as MessagePack; a scoring call reads two
keys and evaluates the features at its own time (:meth:`OnlineStore.features_at`). The streaming job
(one writer) writes the entities a batch changed together with every consumer offset it has applied (one
key, ``offsets``: ``topic:partition`` → next offset) in one ``put_many`` — atomic on both stores — so
after a crash it resumes exactly where the state is, and a scoring call that reads the offsets with its
two entities (:meth:`OnlineStore.snapshot`, one atomic read) knows exactly which payments it saw.
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
_decode_offsets_map = msgspec.msgpack.Decoder(dict[str, int]).decode
OFFSETS_KEY = "offsets"


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


def state_key(entity: Entity, entity_id: str) -> str:
    """The store's key of an entity's state: ``card:<id>``, ``merchant:<id>``."""
    return f"{entity}:{entity_id}"


class OnlineStore:
    """Entity histories in ``kv``: read by scoring, written by the streaming job."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv

    def histories(self, keys: Iterable[tuple[Entity, str]]) -> dict[tuple[Entity, str], EntityHistory]:
        """The stored histories of ``keys`` (a new, empty one where there is none)."""
        wanted = list(dict.fromkeys(keys))
        found = self.kv.get_many([state_key(e, i) for e, i in wanted])
        return {k: _history(v) for k, v in zip(wanted, found, strict=True)}

    def save(self, histories: Mapping[tuple[Entity, str], EntityHistory], offsets: Mapping[str, int]) -> None:
        """Write ``histories`` and every applied offset (``topic:partition`` → next offset) at once."""
        self.put_states({state_key(e, i): dump(h) for (e, i), h in histories.items()}, offsets)

    def put_states(self, states: Mapping[str, bytes], offsets: Mapping[str, int]) -> None:
        """:meth:`save` of states already encoded (:func:`dump`), by :func:`state_key`."""
        self.kv.put_many({**states, OFFSETS_KEY: _encode(dict(offsets))})

    def offsets(self) -> dict[str, int]:
        """The next offset to apply per ``topic:partition`` (absent: nothing applied yet)."""
        return _decode_offsets(self.kv.get_many([OFFSETS_KEY])[0])

    def snapshot(
        self, *, card_id: str, merchant_id: str, t: int
    ) -> tuple[dict[str, float | int | None], dict[str, int]]:
        """:meth:`features_at` and the offsets the state was built to, in one atomic read."""
        card, merchant, offsets = self.kv.get_many(
            [state_key("card", card_id), state_key("merchant", merchant_id), OFFSETS_KEY]
        )
        values = _history(card).values("card", t) | _history(merchant).values("merchant", t)
        return {f.name: values[f.name] for f in FEATURES}, _decode_offsets(offsets)

    def features_at(self, *, card_id: str, merchant_id: str, t: int) -> dict[str, float | int | None]:
        """Every feature (in :data:`FEATURES` order) of this card and merchant as of ``t``."""
        return self.snapshot(card_id=card_id, merchant_id=merchant_id, t=t)[0]


def _history(data: bytes | None) -> EntityHistory:
    return load(data) if data is not None else EntityHistory()


def _decode_offsets(data: bytes | None) -> dict[str, int]:
    return _decode_offsets_map(data) if data is not None else {}
