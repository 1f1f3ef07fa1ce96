"""core.inflate: gunzip bounded step by step, whatever the ratio, and clear errors on bad input."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from entrepot.core import errors as E
from entrepot.core.inflate import STEP, gunzip, gunzip_file
from support.bombs import GiB, MiB, chunked, gzip_bomb

DATA = b"".join(b"%d,row number %d\n" % (i, i) for i in range(20_000))


def test_the_bomb_builder_makes_real_gzip():
    assert gzip.decompress(gzip_bomb(3 * MiB)) == b"1\tx\n" * (3 * MiB // 4)
    assert gzip.decompress(gzip_bomb(3 * MiB, b"ab\n")) == b"ab\n" * (3 * (MiB // 3))


def test_every_step_yields_at_most_step_bytes_and_memory_stays_flat():
    bomb = gzip_bomb(256 * MiB)  # ~260 KB that inflate 1,000 times
    tracemalloc.start()
    try:
        total = 0
        largest = 0
        for out in gunzip([bomb], max_bytes=None, step=64 * 1024):  # the whole bomb as one chunk
            total += len(out)
            largest = max(largest, len(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 256 * MiB
    assert largest == 64 * 1024
    assert peak < 4 * MiB, peak  # one step of output plus one slice of input, not 256 MiB


def test_the_default_step_is_one_mib():
    assert max(map(len, gunzip(chunked(gzip_bomb(8 * MiB)), max_bytes=None))) == STEP == MiB


def test_the_limit_is_checked_before_more_is_produced():
    produced = 0
    with pytest.raises(E.PayloadTooLarge) as info:
        for out in gunzip([gzip_bomb(3 * GiB)], max_bytes=10 * MiB + 5):
            produced += len(out)
    assert produced <= 10 * MiB + 5  # not one step more
    assert str(10 * MiB + 5) in info.value.message
    assert info.value.code == "validation.tooLarge"


def test_the_limit_is_exact():
    packed = gzip.compress(DATA)
    assert b"".join(gunzip([packed], max_bytes=len(DATA))) == DATA
    with pytest.raises(E.PayloadTooLarge):
        list(gunzip([packed], max_bytes=len(DATA) - 1))


def test_a_caller_shapes_its_own_too_large_error():
    def too_large(limit: int) -> E.PayloadTooLarge:
        return E.PayloadTooLarge(f"over {limit} (setting my_limit)", code="my.tooLarge")

    with pytest.raises(E.PayloadTooLarge) as info:
        list(gunzip([gzip_bomb(64 * MiB)], max_bytes=MiB, too_large=too_large))
    assert info.value.code == "my.tooLarge" and "my_limit" in info.value.message


@pytest.mark.parametrize("size", [1, 7, 4096, 10**9])
def test_concatenated_members_and_padding_in_any_chunking(size: int):
    packed = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]) + b"\x00" * 3 + gzip.compress(b"end")
    packed += b"\x00" * 5  # padding after the last member, as tar writes it
    assert b"".join(gunzip(chunked(packed, size), max_bytes=None)) == DATA + b"end"


def test_empty_input_inflates_to_nothing():
    assert list(gunzip([], max_bytes=None)) == []
    assert list(gunzip([b"", b""], max_bytes=None)) == []


@pytest.mark.parametrize(
    ("packed", "fragment"),
    [
        (gzip.compress(DATA)[:-5], "truncated"),  # inside the trailer
        (gzip.compress(DATA)[:200], "truncated"),  # inside the deflate data
        (b"\x1f", "truncated"),  # inside the header
        (b"plain text, not gzip\n", "not valid gzip"),
        (gzip.compress(DATA) + b"trailing garbage", "after 1 complete gzip member"),
        (gzip.compress(DATA)[:50] + b"\xff" * 100 + gzip.compress(DATA)[150:], "not valid gzip"),
    ],
)
def test_bad_input_is_invalid_input_that_says_what_to_fix(packed: bytes, fragment: str):
    with pytest.raises(E.InvalidInput) as info:
        list(gunzip(chunked(packed, 64), max_bytes=None, what="the upload", fix="send it again", code="x.gz"))
    error = info.value
    assert not isinstance(error, E.PayloadTooLarge)
    assert error.code == "x.gz"
    assert error.message.startswith("the upload ") and fragment in error.message
    assert error.message.endswith("send it again")


def test_gunzip_file_writes_the_data_and_removes_its_output_on_error(tmp_path: Path):
    source, target = tmp_path / "in.gz", tmp_path / "out.csv"
    source.write_bytes(gzip.compress(DATA) + gzip.compress(DATA))
    assert gunzip_file(source, target, max_bytes=None) == 2 * len(DATA)
    assert target.read_bytes() == DATA + DATA

    source.write_bytes(gzip_bomb(GiB))
    with pytest.raises(E.PayloadTooLarge):
        gunzip_file(source, target, max_bytes=4 * MiB)
    assert not target.exists()

    source.write_bytes(gzip.compress(DATA)[:-1])
    with pytest.raises(E.InvalidInput, match="truncated"):
        gunzip_file(source, target, max_bytes=None)
    assert not target.exists()
