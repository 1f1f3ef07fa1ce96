"""The aws-chunked decoder (faces/s3/awschunked.py) and the body chain around it (faces/s3/bodies.py):
the S3 documentation's signed example, every framing error, checksums, bounded memory."""

from __future__ import annotations

import base64
import hashlib
import zlib

import google_crc32c
import pytest

from entrepot.core.auth import ANONYMOUS
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.awschunked import AwsChunkedDecoder, encode
from entrepot.faces.s3.bodies import BodySpec, Decoded, PayloadMode
from entrepot.faces.s3.errors import S3Error
from entrepot.faces.s3.sigv4 import ChunkSigner, Scope, signing_key

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SCOPE = Scope("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3")
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"  # the docs' seed signature
SIGNER = ChunkSigner(signing_key(SECRET, SCOPE), "20130524T000000Z", SCOPE.text, SEED)
DATA = b"a" * 66560
BODY = encode(DATA, 65536, SIGNER)


def decode_all(body: bytes, decoder: AwsChunkedDecoder, step: int) -> bytes:
    out = b"".join(b"".join(decoder.feed(body[i : i + step])) for i in range(0, len(body), step))
    decoder.finish()
    return out


@pytest.mark.parametrize("step", [1, 7, 1000, 65536, 1 << 20])
def test_the_documentation_example_decodes_in_pieces_of_any_size(step):
    assert decode_all(BODY, AwsChunkedDecoder(66560, (), SIGNER), step) == DATA


def code_of(body: bytes, decoder: AwsChunkedDecoder, step: int = 4096) -> str:
    with pytest.raises(S3Error) as caught:
        decode_all(body, decoder, step)
    return caught.value.code


def test_a_flipped_payload_byte_breaks_the_chunk_signature():
    bad = bytearray(BODY)
    bad[200] ^= 1
    assert code_of(bytes(bad), AwsChunkedDecoder(66560, (), SIGNER)) == "SignatureDoesNotMatch"


def test_a_wrong_final_signature_is_refused():
    assert BODY.endswith(b"\r\n\r\n")
    head, _, sig_and_rest = BODY.rpartition(b"0;chunk-signature=")
    forged = head + b"0;chunk-signature=" + b"0" * 64 + b"\r\n\r\n"
    assert len(sig_and_rest) == 64 + 4
    assert code_of(forged, AwsChunkedDecoder(66560, (), SIGNER)) == "SignatureDoesNotMatch"


def test_a_reordered_chunk_is_refused():
    one = encode(b"x" * 8192 + b"y" * 8192, 8192, SIGNER)
    lines = one.split(b"\r\n")
    # swap the two data chunks (with their headers): each signature chains from the previous one
    swapped = b"\r\n".join([lines[2], lines[3], lines[0], lines[1], *lines[4:]])
    assert code_of(swapped, AwsChunkedDecoder(16384, (), SIGNER)) == "SignatureDoesNotMatch"


def test_truncated_bodies_are_incomplete():
    for cut in (10, 100, 66000, len(BODY) - 3):
        assert code_of(BODY[:cut], AwsChunkedDecoder(66560, (), SIGNER)) == "IncompleteBody"


def test_signed_chunks_but_the_last_carry_at_least_8_kib():
    assert (
        code_of(encode(b"z" * 3000, 1000, SIGNER), AwsChunkedDecoder(3000, (), SIGNER))
        == "InvalidChunkSizeError"
    )
    small_last = encode(b"z" * 9000, 8192, SIGNER)
    assert decode_all(small_last, AwsChunkedDecoder(9000, (), SIGNER), 100) == b"z" * 9000


def test_signature_presence_must_match_the_mode():
    unsigned = encode(DATA, 65536)
    assert code_of(unsigned, AwsChunkedDecoder(66560, (), SIGNER)) == "SignatureDoesNotMatch"
    assert code_of(BODY, AwsChunkedDecoder(66560, ())) == "IncompleteBody"  # unsigned stream, signed chunks


@pytest.mark.parametrize(
    "line",
    [b"+10\r\n", b"-1\r\n", b"0x10\r\n", b"10000000000000000\r\n", b" 10\r\n", b"zz\r\n", b"\r\n"],
)
def test_bad_chunk_size_lines(line):
    assert code_of(line + b"x" * 16 + b"\r\n0\r\n\r\n", AwsChunkedDecoder(None)) == "IncompleteBody"


def test_absurd_chunk_sizes_are_refused_before_any_data():
    decoder = AwsChunkedDecoder(None)
    with pytest.raises(S3Error) as caught:
        decoder.feed(b"80000000\r\n")  # 2 GiB announced
    assert caught.value.code == "InvalidRequest"


def test_the_decoded_length_must_match():
    body = encode(b"q" * 100, 64)
    assert code_of(body, AwsChunkedDecoder(99)) == "IncompleteBody"  # more than announced
    assert code_of(body, AwsChunkedDecoder(101)) == "IncompleteBody"  # less
    assert decode_all(body, AwsChunkedDecoder(100), 3) == b"q" * 100


def test_bytes_after_the_end_are_refused():
    assert code_of(encode(b"q" * 10, 64) + b"extra", AwsChunkedDecoder(10)) == "IncompleteBody"


def test_lines_are_bounded():
    with pytest.raises(S3Error) as caught:
        AwsChunkedDecoder(None).feed(b"1" * 5000)
    assert caught.value.code == "IncompleteBody"


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_trailers_announced_present_and_nothing_else():
    body = encode(b"hello", 64, None, {"x-amz-checksum-crc32": crc32(b"hello")})
    trailers = AwsChunkedDecoder(5, ("x-amz-checksum-crc32",))
    assert decode_all(body, trailers, 2) == b"hello"
    assert trailers.trailers == {"x-amz-checksum-crc32": crc32(b"hello")}
    assert code_of(encode(b"hello", 64), AwsChunkedDecoder(5, ("x-amz-checksum-crc32",))) == "IncompleteBody"
    assert code_of(body, AwsChunkedDecoder(5)) == "MalformedTrailerError"
    # botocore ends with the trailer line; some writers omit the final empty line
    assert decode_all(body[:-2], AwsChunkedDecoder(5, ("x-amz-checksum-crc32",)), 5) == b"hello"


def test_signed_trailers_need_their_signature():
    trailer = {"x-amz-checksum-crc32": crc32(DATA)}
    body = encode(DATA, 65536, SIGNER, trailer)
    assert decode_all(body, AwsChunkedDecoder(66560, ("x-amz-checksum-crc32",), SIGNER), 999) == DATA
    forged = body.replace(crc32(DATA).encode(), b"AAAAAA==")
    assert (
        code_of(forged, AwsChunkedDecoder(66560, ("x-amz-checksum-crc32",), SIGNER))
        == "SignatureDoesNotMatch"
    )
    stripped = body[: body.index(b"x-amz-trailer-signature")] + b"\r\n"
    assert (
        code_of(stripped, AwsChunkedDecoder(66560, ("x-amz-checksum-crc32",), SIGNER))
        == "SignatureDoesNotMatch"
    )


def test_payload_streams_out_before_a_chunk_ends():
    """Never a whole chunk in memory: a 64 MiB chunk comes out piece by piece as it arrives."""
    decoder = AwsChunkedDecoder(None)
    assert decoder.feed(b"4000000\r\n") == []
    piece = b"p" * (1 << 20)
    for _ in range(64):
        assert decoder.feed(piece) == [piece]
        assert len(decoder._buf) == 0
    assert decoder.feed(b"\r\n0\r\n\r\n") == []
    decoder.finish()
    assert decoder.size == 64 << 20


# -- the body chain: checksums of header or trailer -----------------------------------------------------
CALLER = S3Caller(ANONYMOUS, None, None, None, "us-east-1")


def spec(mode: PayloadMode, size: int | None, *, checksum=None, trailer=None, limit=1 << 30) -> BodySpec:
    names = (trailer,) if trailer else ()
    return BodySpec(mode, size, None, None, checksum, trailer, names, limit)


def drain(body: Decoded) -> bytes:
    return b"".join(body)


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [
        ("crc32", lambda d: zlib.crc32(d).to_bytes(4, "big")),
        ("crc32c", lambda d: google_crc32c.value(d).to_bytes(4, "big")),
        ("sha1", lambda d: hashlib.sha1(d).digest()),
        ("sha256", lambda d: hashlib.sha256(d).digest()),
    ],
)
def test_trailer_checksums_are_verified_and_returned(algorithm, digest):
    from entrepot.core.objects.checksums import Checksum

    data = bytes(range(256)) * 500
    value = base64.b64encode(digest(data)).decode()
    name = f"x-amz-checksum-{algorithm}"
    body = encode(data, 30000, None, {name: value})
    decoded = Decoded(
        iter([body[i : i + 777] for i in range(0, len(body), 777)]),
        spec(PayloadMode.CHUNKED_UNSIGNED_TRAILER, len(data), trailer=name),
        CALLER,
    )
    assert drain(decoded) == data
    assert decoded.result() == Checksum(algorithm, value)
    wrong = encode(data, 30000, None, {name: base64.b64encode(digest(b"other")).decode()})
    with pytest.raises(S3Error) as caught:
        drain(
            Decoded(
                iter([wrong]), spec(PayloadMode.CHUNKED_UNSIGNED_TRAILER, len(data), trailer=name), CALLER
            )
        )
    assert caught.value.code == "BadDigest"


def test_a_header_checksum_is_verified_after_the_last_byte():
    from entrepot.core.objects.checksums import Checksum

    good = Checksum("crc32", crc32(b"abc"))
    decoded = Decoded(iter([b"a", b"bc"]), spec(PayloadMode.SHA256, 3, checksum=good), CALLER)
    assert drain(decoded) == b"abc" and decoded.result() == good
    with pytest.raises(S3Error) as caught:
        drain(Decoded(iter([b"abd"]), spec(PayloadMode.SHA256, 3, checksum=good), CALLER))
    assert caught.value.code == "BadDigest"


def test_the_size_cap_holds_while_streaming():
    decoded = Decoded(iter([b"x" * 600, b"x" * 600]), spec(PayloadMode.UNSIGNED, None, limit=1000), CALLER)
    with pytest.raises(S3Error) as caught:
        drain(decoded)
    assert caught.value.code == "EntityTooLarge"


def test_closing_the_chain_closes_the_request_body():
    closed = []

    def raw():
        try:
            yield b"x" * 10
            yield b"y" * 10
        finally:
            closed.append(True)

    decoded = Decoded(raw(), spec(PayloadMode.UNSIGNED, None), CALLER)
    iterator = iter(decoded)
    next(iterator)
    iterator.close()
    assert closed == [True]
