"""The partition of a keyed message: Kafka's default, so the embedded log and a Kafka topic agree.

Kafka's Java producer — and so Kafka Connect, Debezium and Spark — places a key on
``toPositive(murmur2(key)) % partitions`` (``Utils.murmur2``, seed ``0x9747b28c``; ``toPositive`` clears
the sign bit). librdkafka's ``murmur2_random`` partitioner computes the same for every non-NULL key; the
Kafka backend configures it (librdkafka's own default, ``consistent_random``, is CRC-32 and would put
keys elsewhere). Keyless messages are the exception: librdkafka spreads them at random, the embedded
log round-robin.

Pure Python: about a microsecond per key (CRC-32 in C is 20 times faster), so producers remember the
partitions of recent keys (:class:`KeyPartitioner`).

>>> murmur2(b"21") - 2**32  # as Java's signed int: Kafka's UtilsTest expects -973932308
-973932308
>>> partition_for(b"21", 8)
4
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Literal
from zlib import crc32

#: How a topic's keys were placed: ``murmur2`` (Kafka's default) or ``crc32`` (embedded topics created
#: before the switch, whose keys must stay where they are).
Hash = Literal["murmur2", "crc32"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(64)]  # keys up to 255 bytes: no format built


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` exactly as Kafka's ``Utils.murmur2`` computes it, as an unsigned 32-bit int."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    if words:
        unpack = _WORDS[words] if words < len(_WORDS) else struct.Struct(f"<{words}I").unpack_from
        for k in unpack(data):
            k = (k * _M) & _MASK
            h = ((h * _M) ^ ((k ^ (k >> 24)) * _M)) & _MASK
    tail = length & 3
    if tail:
        i = words << 2
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _crc32_partition(key: bytes, partitions: int) -> int:
    return crc32(key) % partitions


_HASHES: dict[Hash, Callable[[bytes, int], int]] = {"murmur2": partition_for, "crc32": _crc32_partition}


class KeyPartitioner:
    """The partition of each key among ``partitions``, remembering up to ``remember`` keys.

    A hot loop reads :attr:`known` itself and calls :meth:`place` only for a key it lacks (a method call
    costs more than the dictionary lookup).

    Args:
        partitions: the topic's partition count.
        hash: ``murmur2`` (Kafka's) or ``crc32`` (legacy embedded topics).
        remember: keys kept; the memory is dropped whole when full (a stream of unique keys just recomputes).

    >>> placer = KeyPartitioner(8)
    >>> placer(b"21"), placer.known
    (4, {b'21': 4})
    """

    __slots__ = ("_hash", "_partitions", "_remember", "known")

    def __init__(self, partitions: int, *, hash: Hash = "murmur2", remember: int = 65_536) -> None:
        self._partitions, self._hash, self._remember = partitions, _HASHES[hash], remember
        self.known: dict[bytes, int] = {}

    def place(self, key: bytes) -> int:
        """Compute ``key``'s partition and remember it."""
        if len(self.known) >= self._remember:
            self.known.clear()
        p = self.known[key] = self._hash(key, self._partitions)
        return p

    def __call__(self, key: bytes) -> int:
        p = self.known.get(key)
        return self.place(key) if p is None else p
