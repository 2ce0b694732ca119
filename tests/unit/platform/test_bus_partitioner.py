"""The partitioner the embedded log shares with Kafka's clients: murmur2 on published test vectors."""

from __future__ import annotations

import zlib

import pytest

from dotjoin.platform.bus.partitioner import KeyPartitioner, murmur2, partition_for

#: Kafka's ``UtilsTest.testMurmur2`` (signed Java ints) and librdkafka's ``rdmurmur2.c`` unit test.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
LIBRDKAFKA_VECTORS = {b"kafka": 0xD067CF64}


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafkas_java_client(key: bytes, expected: int) -> None:
    assert _signed(murmur2(key)) == expected


def test_murmur2_matches_librdkafka_and_covers_every_tail_length() -> None:
    assert murmur2(b"kafka") == LIBRDKAFKA_VECTORS[b"kafka"]
    # lengths 0..7: every remainder mod 4, with and without whole words; all distinct 32-bit values
    hashes = [murmur2(b"abcdefg"[:n]) for n in range(8)]
    assert len(set(hashes)) == 8 and all(0 <= h < 2**32 for h in hashes)


def test_partition_is_the_positive_hash_modulo_the_partition_count() -> None:
    # toPositive clears the sign bit: "21" hashes to a negative Java int
    assert partition_for(b"21", 8) == (-973932308 & 0x7FFF_FFFF) % 8 == 4
    assert partition_for(b"abc", 7) == 479470107 % 7
    assert {partition_for(f"k{i}".encode(), 4) for i in range(100)} == {0, 1, 2, 3}


def test_long_keys_use_the_general_path() -> None:
    key = bytes(range(256)) * 2  # 512 bytes: more words than the precompiled unpackers
    assert murmur2(key) == murmur2(bytes(key))
    assert murmur2(key) != murmur2(key[:-1])


def test_the_placer_remembers_keys_and_forgets_them_all_when_full() -> None:
    placer = KeyPartitioner(8, remember=3)
    assert [placer(k) for k in (b"a", b"b", b"c")] == [partition_for(k, 8) for k in (b"a", b"b", b"c")]
    assert len(placer.known) == 3
    assert placer(b"d") == partition_for(b"d", 8) and placer.known == {b"d": partition_for(b"d", 8)}


def test_the_legacy_placer_is_crc32() -> None:
    placer = KeyPartitioner(4, hash="crc32")
    keys = [f"k{i}".encode() for i in range(50)]
    assert [placer(k) for k in keys] == [zlib.crc32(k) % 4 for k in keys]
