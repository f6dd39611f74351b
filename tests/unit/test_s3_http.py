"""The pure pieces of the S3 HTTP API: SigV4 over HTTP (AWS's own worked
examples), aws-chunked decoding, checksums, XML, routing, headers and the
error-to-status table."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import os
import zlib
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from node.s3 import body as bodies
from node.s3 import buckets as bucket_pages
from node.s3 import headers as hdr
from node.s3 import xml
from node.s3.auth import lower_headers, query_pairs
from node.s3.server import UNOFFERED, route, split_path
from tristore import errors, replication, sigv4
from tristore.model import BucketInfo, ByteRange, CompletedPart, ListEntry, ListPage, ObjectInfo

pytestmark = pytest.mark.unit

# AWS's worked examples (S3 documentation, "Signature Calculations for the
# Authorization Header", "Query string authentication", "Transferring payload in
# multiple chunks"): these keys, this date.
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
KEY = sigv4.signing_key(SECRET, "20130524", "us-east-1")


def test_header_auth_matches_the_aws_example() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "x-amz-date": WHEN,
    }
    canonical = sigv4.http_canonical_request(
        "GET", "/test.txt", [], headers, sorted(headers), sigv4.EMPTY_SHA256
    )
    assert canonical.splitlines()[:3] == ["GET", "/test.txt", ""]
    sig = sigv4.signature(KEY, sigv4.string_to_sign(WHEN, SCOPE, canonical))
    assert sig == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    auth = (
        f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE},"
        f"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature={sig}"
    )
    parsed = sigv4.parse_http({**headers, "authorization": auth}, {})
    assert parsed is not None
    assert parsed.signed.access_key_id == AKID
    assert parsed.signed_headers == ("host", "range", "x-amz-content-sha256", "x-amz-date")
    assert sigv4.http_signature(parsed.signed, KEY, canonical) == sig


def test_presigned_url_matches_the_aws_example() -> None:
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{AKID}/{SCOPE}"),
        ("X-Amz-Date", WHEN),
        ("X-Amz-Expires", "86400"),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical = sigv4.http_canonical_request(
        "GET",
        "/test.txt",
        query,
        {"host": "examplebucket.s3.amazonaws.com"},
        ["host"],
        sigv4.UNSIGNED_PAYLOAD,
    )
    sig = sigv4.signature(KEY, sigv4.string_to_sign(WHEN, SCOPE, canonical))
    assert sig == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    when = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
    made = sigv4.presign_query(
        AKID, KEY, "us-east-1", "GET", "/test.txt", "examplebucket.s3.amazonaws.com", 86400,
        now=when,
    )  # fmt: skip
    assert made[-1] == ("X-Amz-Signature", sig)
    parsed = sigv4.parse_http({}, dict(made))
    assert parsed is not None and parsed.expires_s == 86400
    assert parsed.signed.payload_sha256 == sigv4.UNSIGNED_PAYLOAD
    # Valid for its day, expired after.
    sigv4.check_time(parsed.signed, when + dt.timedelta(hours=23), expires_s=86400)
    with pytest.raises(errors.AccessDenied, match="expired"):
        sigv4.check_time(parsed.signed, when + dt.timedelta(hours=25), expires_s=86400)


def _presigned_now() -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    key = sigv4.signing_key(SECRET, sigv4.amz_date(now)[:8], "us-east-1")
    return dict(sigv4.presign_query(AKID, key, "us-east-1", "GET", "/b/k", "h", 60, now=now))


_GOOD_PRESIGNED = _presigned_now()
#: A V4 presigned URL's parameters.
_V4Q = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
        "X-Amz-SignedHeaders", "X-Amz-Expires")  # fmt: skip
_CRED = _GOOD_PRESIGNED["X-Amz-Credential"]
_DAY = _GOOD_PRESIGNED["X-Amz-Date"][:8]


@pytest.mark.parametrize(
    "change, says",
    [
        *(({name: None}, f"requires the X-Amz-Algorithm, .*; missing: {name}$") for name in _V4Q),
        ({"X-Amz-Signature": None, "X-Amz-Date": None}, "missing: X-Amz-Signature, X-Amz-Date$"),
        ({"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}, 'only supports "AWS4-HMAC-SHA256"'),
        ({"X-Amz-Date": "2013-05-24T00:00:00Z"}, "X-Amz-Date must be in the ISO8601 Long"),
        ({"X-Amz-Date": "20131324T000000Z"}, "X-Amz-Date must be in the ISO8601 Long"),
        ({"X-Amz-Expires": "soon"}, "X-Amz-Expires should be a number"),
        ({"X-Amz-Expires": " 60"}, "X-Amz-Expires should be a number"),
        ({"X-Amz-Expires": "-1"}, "X-Amz-Expires must be non-negative"),
        ({"X-Amz-Expires": "604801"}, "less than a week .* 604800 seconds"),
        ({"X-Amz-Expires": "9" * 20}, "less than a week"),
        ({"X-Amz-Credential": f"{AKID}/{_DAY}/us-east-1/s3"}, "Credential is mal-formed"),
        ({"X-Amz-Credential": _CRED.replace("/s3/", "/ec2/")}, 'incorrect service "ec2"'),
        ({"X-Amz-Credential": _CRED.replace("aws4_request", "x")}, 'incorrect terminal "x"'),
        ({"X-Amz-Credential": f"{AKID}/20130524/us-east-1/s3/aws4_request"}, "credential date"),
        ({"X-Amz-Signature": "xyz"}, "X-Amz-Signature must be 64 hexadecimal digits"),
        ({"X-Amz-SignedHeaders": "range"}, "X-Amz-SignedHeaders must include host"),
    ],
)
def test_malformed_presigned_parameters_say_what_is_wrong(
    change: dict[str, str | None], says: str
) -> None:
    """S3's 400 AuthorizationQueryParametersError naming the fault, not a
    403: the URL is wrong, not its signer's rights. (Was AccessDenied.)"""
    query = {k: v for k, v in {**_GOOD_PRESIGNED, **change}.items() if v is not None}
    with pytest.raises(errors.AuthorizationQueryParametersError, match=says) as e:
        sigv4.parse_http({}, query)
    assert errors.http_status(e.value) == 400
    if change.get("X-Amz-Credential"):
        assert e.value.message.startswith("Error parsing the X-Amz-Credential parameter; ")


def test_presigned_parameters_are_checked() -> None:
    good = _GOOD_PRESIGNED
    assert sigv4.parse_http({}, good) is not None
    # Well formed, valid for no time: expired (403), as one past its time.
    with pytest.raises(errors.AccessDenied, match="expired"):
        sigv4.parse_http({}, {**good, "X-Amz-Expires": "0"})
    with pytest.raises(errors.InvalidRequest, match="AWS4-HMAC-SHA256"):
        sigv4.parse_http({}, {"AWSAccessKeyId": AKID, "Signature": "x", "Expires": "1"})
    with pytest.raises(errors.InvalidRequest):
        sigv4.parse_http({"authorization": f"AWS {AKID}:c2ln"}, {})
    assert sigv4.parse_http({}, {"prefix": "a"}) is None


_SIG = "0" * 64
_GOOD_AUTH = (
    f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, "
    f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={_SIG}"
)


@pytest.mark.parametrize(
    "auth, says",
    [
        ("AWS4-HMAC-SHA256 garbage", 'component "garbage" is malformed'),
        ("AWS4-HMAC-SHA256", "requires three components"),
        (f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, Signature={_SIG}", "three components"),
        (
            f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, SignedHeaders=host, Signature=",
            'component "Signature=" is malformed',
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, SignedHeaders=host, Sig={_SIG}",
            "three components",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, Credential={AKID}/{SCOPE}, "
            f"Signature={_SIG}",
            "three components",
        ),
        (_GOOD_AUTH.replace(_SIG, "xyz"), "64 hexadecimal digits"),
        (_GOOD_AUTH.replace(SCOPE, "20130524/us-east-1/s3"), "Credential is mal-formed"),
        (_GOOD_AUTH.replace(SCOPE, "2013-05-24/us-east-1/s3/aws4_request"), "mal-formed"),
        (_GOOD_AUTH.replace(SCOPE, "20131324/us-east-1/s3/aws4_request"), "mal-formed"),
        (_GOOD_AUTH.replace(f"{AKID}/", "/"), "non-empty Access Key"),
        (_GOOD_AUTH.replace("/s3/", "/ec2/"), 'incorrect service "ec2"'),
        (_GOOD_AUTH.replace("aws4_request", "aws4_reqest"), 'incorrect terminal "aws4_reqest"'),
    ],
)
def test_a_malformed_authorization_header_says_what_is_wrong(auth: str, says: str) -> None:
    """S3's 400 AuthorizationHeaderMalformed, not a 403: the request is wrong,
    not its signer's rights."""
    headers = {"x-amz-date": WHEN, "x-amz-content-sha256": sigv4.EMPTY_SHA256}
    with pytest.raises(errors.AuthorizationHeaderMalformed, match=says) as e:
        sigv4.parse_http({**headers, "authorization": auth}, {})
    assert e.value.message.startswith("The authorization header is malformed; ")
    assert errors.http_status(e.value) == 400
    assert sigv4.parse_http({**headers, "authorization": _GOOD_AUTH}, {}) is not None


@pytest.mark.parametrize(
    "auth", ["Bearer secret-token", "", "AWS4-HMAC-SHA25 Credential=x", "Basic c2VjcmV0LXRva2Vu"]
)
def test_another_authorization_scheme_is_unsupported(auth: str) -> None:
    """As S3: 400 InvalidArgument "Unsupported Authorization Type", without
    echoing what was sent (it may be a token)."""
    with pytest.raises(errors.InvalidArgument, match=r"^Unsupported Authorization Type") as e:
        sigv4.parse_http({"authorization": auth}, {})
    assert type(e.value) is errors.InvalidArgument
    assert "secret-token" not in e.value.message and "c2VjcmV0" not in e.value.message


def test_canonical_query_and_path_encoding() -> None:
    pairs = query_pairs("prefix=a%20b%2Bc&list-type=2&delimiter=%2F&empty")
    assert pairs == [("prefix", "a b+c"), ("list-type", "2"), ("delimiter", "/"), ("empty", "")]
    assert sigv4.canonical_query(pairs) == "delimiter=%2F&empty=&list-type=2&prefix=a%20b%2Bc"
    canonical = sigv4.http_canonical_request("GET", "/b/ü +~x", [], {}, [], "-")
    assert canonical.splitlines()[1] == "/b/%C3%BC%20%2B~x"
    assert split_path("/b/dir/%C3%BC%20x") == ("b", "dir/ü x")
    assert split_path("/") == ("", "")
    with pytest.raises(errors.InvalidArgument, match="UTF-8"):
        split_path("/b/%FF%FE")
    with pytest.raises(errors.InvalidArgument, match="UTF-8"):
        query_pairs("prefix=%C3")
    assert split_path("/k/x", "b.s3.test:8443", "s3.test") == ("b", "k/x")
    assert split_path("/", "B.S3.test", "s3.test") == ("b", "")
    assert split_path("/b/k", "s3.test:8443", "s3.test") == ("b", "k")
    assert split_path("/b/k", "127.0.0.1:8443", "s3.test") == ("b", "k")
    assert lower_headers([("X-Amz-Meta-A", "1"), ("x-amz-meta-a", "2")]) == {"x-amz-meta-a": "1,2"}


# -- aws-chunked ------------------------------------------------------------------


def _reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


async def _all(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in it])


def _decode(
    raw: bytes,
    signer: bodies.ChunkSigner | None = None,
    checksum: bodies.Checksum | None = None,
    trailer_signed: bool = False,
) -> bytes:
    """An aws-chunked body decoded (and its trailer checksum checked, as the
    store that takes the body computes and checks it)."""

    async def go() -> bytes:
        it = bodies.aws_chunked(_reader(raw), signer, checksum, trailer_signed)
        data = await _all(bodies.checked(it, checksum) if checksum is not None else it)
        if checksum is not None and (h := checksum.hasher()) is not None:
            h.update(data)
            checksum.finish(h)
        return data

    return asyncio.run(go())


def _signed_body(chunks: list[bytes], seed: str, tamper: int = -1) -> bytes:
    out, previous = b"", seed
    for i, data in enumerate([*chunks, b""]):
        sig = sigv4.chunk_signature(KEY, WHEN, SCOPE, previous, hashlib.sha256(data).hexdigest())
        previous = sig
        sent = data[:-1] + b"!" if i == tamper else data
        out += f"{len(data):x};chunk-signature={sig}\r\n".encode() + sent + b"\r\n"
    return out


def test_chunk_signatures_match_the_aws_example() -> None:
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    first = sigv4.chunk_signature(KEY, WHEN, SCOPE, seed, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second = sigv4.chunk_signature(KEY, WHEN, SCOPE, first, hashlib.sha256(b"a" * 1024).hexdigest())
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    final = sigv4.chunk_signature(KEY, WHEN, SCOPE, second, sigv4.EMPTY_SHA256)
    assert final == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"


def test_signed_chunks_decode_and_a_tampered_one_is_refused() -> None:
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    signer = bodies.ChunkSigner(KEY, WHEN, SCOPE, seed)
    chunks = [b"a" * 65536, b"a" * 1024]
    assert _decode(_signed_body(chunks, seed), signer) == b"a" * 66560
    with pytest.raises(errors.SignatureDoesNotMatch):
        _decode(_signed_body(chunks, seed, 1), signer)
    with pytest.raises(errors.IncompleteBody):
        _decode(_signed_body(chunks, seed)[:60000], signer)


def _unsigned_trailer_body(data: bytes, name: str, value: str) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"{name}:{value}\r\n\r\n".encode()


def test_an_unsigned_body_with_a_checksum_trailer() -> None:
    data = b"hello, trailer" * 1000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    raw = _unsigned_trailer_body(data, "x-amz-checksum-crc32", crc)
    checksum = bodies.Checksum("crc32")
    assert _decode(raw, None, checksum) == data
    assert checksum.declared == checksum.computed == crc
    wrong = _unsigned_trailer_body(data, "x-amz-checksum-crc32", "AAAAAA==")
    with pytest.raises(errors.BadDigest, match="CRC32 you specified did not match"):
        _decode(wrong, None, bodies.Checksum("crc32"))
    missing = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    with pytest.raises(errors.InvalidRequest, match="trailer"):
        _decode(missing, None, bodies.Checksum("crc32"))


def test_a_signed_trailer() -> None:
    seed = "0" * 64
    signer = bodies.ChunkSigner(KEY, WHEN, SCOPE, seed)
    data = b"x" * 100
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    body = _signed_body([data], seed)
    previous = sigv4.chunk_signature(
        KEY, WHEN, SCOPE,
        sigv4.chunk_signature(KEY, WHEN, SCOPE, seed, hashlib.sha256(data).hexdigest()),
        sigv4.EMPTY_SHA256,
    )  # fmt: skip
    line = f"x-amz-checksum-sha256:{sha}".encode()
    tsig = sigv4.trailer_signature(KEY, WHEN, SCOPE, previous, line + b"\n")
    body = (
        body[: -len(b"\r\n")] + line + b"\r\n" + f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    )
    assert _decode(body, signer, bodies.Checksum("sha256"), trailer_signed=True) == data
    forged = body.replace(tsig.encode(), b"0" * 64)
    with pytest.raises(errors.SignatureDoesNotMatch):
        _decode(forged, signer, bodies.Checksum("sha256"), trailer_signed=True)


def test_payload_sha256_is_checked() -> None:
    async def one() -> AsyncIterator[bytes]:
        yield b"body"

    good = hashlib.sha256(b"body").hexdigest()
    assert asyncio.run(_all(bodies.checked(one(), sha256_hex=good))) == b"body"
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        asyncio.run(_all(bodies.checked(one(), sha256_hex=sigv4.EMPTY_SHA256)))


def test_a_large_payload_sha256_is_hashed_in_threads_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """x-amz-content-sha256 over a body of large and small pieces: each large
    piece is hashed in a thread (off the event loop), the small ones here, all
    in order into one digest; a wrong one is still XAmzContentSHA256Mismatch."""
    sizes = [300_000, 10, bodies.OFF_LOOP_MIN, 5, bodies.OFF_LOOP_MIN - 1, 2 * 1024 * 1024, 7]
    pieces = [os.urandom(n) for n in sizes]
    whole = b"".join(pieces)
    threaded: list[int] = []
    real = asyncio.to_thread

    async def counting(fn: Any, *args: Any) -> Any:
        threaded.append(len(args[0]))
        return await real(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    good = hashlib.sha256(whole).hexdigest()
    assert asyncio.run(_all(bodies.checked(body(), sha256_hex=good))) == whole
    assert threaded == [n for n in sizes if n >= bodies.OFF_LOOP_MIN]
    other = hashlib.sha256(whole[:-1] + b"!").hexdigest()
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        asyncio.run(_all(bodies.checked(body(), sha256_hex=other)))


def test_checksum_names() -> None:
    assert bodies.checksum_name("x-amz-checksum-CRC32") == "crc32"
    assert bodies.checksum_name("x-amz-checksum-crc64nvme") == "crc64nvme"
    with pytest.raises(errors.InvalidRequest):
        bodies.checksum_name("x-amz-checksum-md4")


# -- XML, routing, headers, statuses ----------------------------------------------


def test_list_v2_xml_url_encoded() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    page = ListPage([ListEntry("a b+c", 3, "abc", when)], ["p/ q/"], True, "tok", 1)
    args = xml.ListArgs("bkt", prefix="", delimiter="/", max_keys=2, encoding_type="url")
    root = ET.fromstring(xml.list_objects_v2(page, args))
    ns = {"s": xml.NS}
    assert root.tag == f"{{{xml.NS}}}ListBucketResult"
    assert root.findtext("s:Contents/s:Key", namespaces=ns) == "a%20b%2Bc"
    assert root.findtext("s:Contents/s:ETag", namespaces=ns) == '"abc"'
    assert root.findtext("s:Contents/s:LastModified", namespaces=ns) == "2024-01-02T03:04:05.678Z"
    assert root.findtext("s:CommonPrefixes/s:Prefix", namespaces=ns) == "p/%20q/"
    assert root.findtext("s:NextContinuationToken", namespaces=ns) == "tok"
    assert root.findtext("s:IsTruncated", namespaces=ns) == "true"
    assert root.findtext("s:KeyCount", namespaces=ns) == "2"
    assert xml.next_marker(page) == "p/ q/"


def test_error_xml() -> None:
    root = ET.fromstring(xml.error("NoSuchKey", "no <such> key", "/b/k", "RID"))
    assert root.tag == "Error"
    assert [c.tag for c in root] == ["Code", "Message", "Resource", "RequestId"]
    assert root.findtext("Message") == "no <such> key"
    # A key with control characters: the document stays XML 1.0 (botocore's
    # parser), the resource percent-encoded.
    doc = xml.error("NoSuchKey", "no such key", "/b/no\x01key\x00", "RID")
    assert b"&#1;" not in doc and b"&#0;" not in doc
    assert ET.fromstring(doc).findtext("Resource") == "/b/no%01key%00"


def test_request_documents() -> None:
    doc = (
        f'<Delete xmlns="{xml.NS}"><Quiet>true</Quiet><Object><Key>a</Key></Object>'
        "<Object><Key>b</Key><VersionId>v1</VersionId></Object></Delete>"
    ).encode()
    assert xml.parse_delete(doc) == ([("a", "", ""), ("b", "v1", "")], True)
    doc = (
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        b'<ETag>"e1"</ETag></Part></CompleteMultipartUpload>'
    )
    assert xml.parse_complete(doc) == [CompletedPart(1, "e1")]
    doc = (
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e1</ETag>"
        b"<ChecksumCRC32> AAAAAA== </ChecksumCRC32></Part></CompleteMultipartUpload>"
    )
    assert xml.parse_complete(doc) == [CompletedPart(1, "e1", "crc32", "AAAAAA==")]
    two = doc.replace(b"</Part>", b"<ChecksumSHA1>AA==</ChecksumSHA1></Part>")
    with pytest.raises(errors.MalformedXML, match="checksums"):
        xml.parse_complete(two)
    with pytest.raises(errors.MalformedXML, match="empty"):
        xml.parse_complete(doc.replace(b" AAAAAA== ", b""))
    with pytest.raises(errors.InvalidRequest, match="md4"):
        xml.parse_complete(doc.replace(b"CRC32>", b"MD4>"))
    assert (
        xml.parse_versioning(
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        )
        == "Enabled"
    )
    for bad in (b"", b"<Delete>", b"<Other/>", b"<Delete></Delete>",
                b'<!DOCTYPE x [<!ENTITY a "b">]><Delete/>'):  # fmt: skip
        with pytest.raises(errors.MalformedXML):
            xml.parse_delete(bad)
    out = ET.fromstring(
        xml.delete_result([xml.Deleted("a"), xml.DeleteError("b", "", "AccessDenied", "no")], False)
    )
    assert [c.tag.rpartition("}")[2] for c in out] == ["Deleted", "Error"]


def test_replication_configuration_both_ways() -> None:
    rules = [
        replication.Rule(
            "r1", (replication.Destination("east", "copy", "STANDARD_IA", "alice"),),
            priority=2, prefix="docs/", tags={"k": "v"}, delete_markers=True,
        ),
        replication.Rule("r2", (replication.Destination("west", "all"),), enabled=False),
    ]  # fmt: skip
    doc = xml.replication_config(rules)
    assert b"<Bucket>arn:aws:s3:east::copy</Bucket>" in doc
    assert xml.parse_replication(doc) == rules
    legacy = (
        b"<ReplicationConfiguration><Role>x</Role><Rule><Status>Enabled</Status>"
        b"<Prefix>p/</Prefix><Destination><Bucket>arn:aws:s3:east::b</Bucket></Destination>"
        b"</Rule></ReplicationConfiguration>"
    )
    (rule,) = xml.parse_replication(legacy)
    assert (rule.id, rule.prefix, rule.destinations[0].name) == ("rule-1", "p/", "east/b")
    with pytest.raises(errors.MalformedXML, match="CLUSTER"):
        xml.parse_replication(legacy.replace(b"arn:aws:s3:east::b", b"arn:aws:s3:::b"))
    two = replication.Rule("r", (rules[0].destinations[0], rules[1].destinations[0]))
    with pytest.raises(errors.NotImplemented):
        xml.replication_config([two])


def test_routing() -> None:
    assert route("GET", "", "", {}) == ("ListBuckets", "list_buckets")
    assert route("GET", "b", "", {"list-type": "2"})[0] == "ListObjects"
    assert route("GET", "b", "", {"versions": ""})[0] == "ListObjectVersions"
    assert route("POST", "b", "", {"delete": ""})[0] == "DeleteObjects"
    assert route("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"})[0] == "UploadPart"
    assert route("GET", "b", "k", {"versionId": "v"})[0] == "GetObject"
    assert route("POST", "b", "k", {"uploads": ""})[0] == "CreateMultipartUpload"
    assert route("PUT", "b", "", {"cors": ""}) == ("PutBucketCors", "put_bucket_cors")
    assert route("DELETE", "b", "", {"cors": ""})[0] == "DeleteBucketCors"
    assert route("GET", "b", "", {"tagging": ""}) == ("GetBucketTagging", "get_bucket_tagging")
    assert route("PUT", "b", "", {"tagging": ""})[0] == "PutBucketTagging"
    assert route("DELETE", "b", "", {"tagging": ""})[0] == "DeleteBucketTagging"
    assert route("PUT", "b", "k", {"tagging": ""})[0] == "PutObjectTagging"
    assert route("GET", "b", "", {"acl": ""}) == ("GetBucketAcl", "get_bucket_acl")
    assert route("PUT", "b", "", {"acl": ""})[0] == "PutBucketAcl"
    assert route("GET", "b", "", {"lifecycle": ""})[0] == "GetBucketLifecycleConfiguration"
    assert route("DELETE", "b", "", {"website": ""})[0] == "DeleteBucketWebsite"
    assert route("GET", "b", "", {"object-lock": ""})[0] == "GetObjectLockConfiguration"
    assert route("OPTIONS", "b", "k", {"uploadId": "u", "partNumber": "1"})[1] == "preflight"
    assert route("OPTIONS", "b", "", {})[1] == "preflight"
    for method, key, query in (("PUT", "", {"lifecycle": ""}), ("PUT", "k", {"retention": ""}),
                               ("PATCH", "k", {}), ("OPTIONS", "", {}),
                               ("GET", "k", {"cors": ""})):  # fmt: skip
        with pytest.raises(errors.NotImplemented):
            route(method, "b" if method != "OPTIONS" else "", key, query)


def test_request_headers() -> None:
    assert hdr.byte_range("bytes=0-9") == ByteRange(0, 9)
    assert hdr.byte_range("bytes=5-") == ByteRange(5, -1)
    assert hdr.byte_range("bytes=-3") == ByteRange(-3)
    # The last 0 bytes: not ignored (S3 answers 416 but for an empty object).
    assert hdr.byte_range("bytes=-0") == ByteRange(0, empty_suffix=True)
    for ignored in ("bytes=0-1,3-4", "items=0-1", "bytes=9-1", "bytes=x-", "bytes=--1", None):
        assert hdr.byte_range(ignored) is None
    assert hdr.md5_hex(base64.b64encode(hashlib.md5(b"x").digest()).decode()) == (
        hashlib.md5(b"x").hexdigest()
    )
    with pytest.raises(errors.InvalidDigest):
        hdr.md5_hex("not-an-md5")
    assert hdr.copy_source("/b/dir/%C3%BC?versionId=v1") == ("b", "dir/ü", "v1")
    with pytest.raises(errors.InvalidArgument):
        hdr.copy_source("only-a-bucket")
    with pytest.raises(errors.InvalidArgument, match="empty string"):
        hdr.copy_source("/b/k?versionId=")
    h = hdr.put_header(
        "b", "k",
        {"x-amz-meta-colour": "blue", "x-amz-tagging": "a=1&b=", "content-type": "text/plain",
         "x-amz-acl": "public-read"},
        5,
    )  # fmt: skip
    assert (h.metadata, h.tags, h.content_type, h.acl, h.size) == (
        {"colour": "blue"}, {"a": "1", "b": ""}, "text/plain", "public-read", 5,
    )  # fmt: skip
    for unoffered in (
        {"x-amz-grant-read": "uri=http://acs.amazonaws.com/groups/global/AllUsers"},
        {"x-amz-object-lock-mode": "GOVERNANCE"},
    ):
        with pytest.raises(errors.NotImplemented):
            hdr.put_header("b", "k", unoffered)
    # The standard headers S3 stores with an object are stored; aws-chunked
    # (how this request's body is framed) is not part of the object's encoding.
    h = hdr.put_header(
        "b", "k",
        {"cache-control": "max-age=60", "content-disposition": 'attachment; filename="a.txt"',
         "content-encoding": "aws-chunked,gzip", "content-language": "de",
         "expires": "Thu, 01 Dec 2044 16:00:00 GMT", "x-amz-meta-a": "1"},
    )  # fmt: skip
    assert h.headers == {
        "cache-control": "max-age=60", "content-disposition": 'attachment; filename="a.txt"',
        "content-encoding": "gzip", "content-language": "de",
        "expires": "Thu, 01 Dec 2044 16:00:00 GMT",
    }  # fmt: skip
    assert hdr.put_header("b", "k", {"content-encoding": "aws-chunked"}).headers == {}
    with pytest.raises(errors.InvalidArgument):
        hdr.put_header("b", "k", {"cache-control": "a\x01b"})
    c = hdr.conditions({"if-modified-since": "Wed, 21 Oct 2015 07:28:00 GMT", "if-match": '"e"'})
    assert c is not None and c.if_match == '"e"'
    assert c.if_modified_since == dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert hdr.conditions({"if-modified-since": "garbage"}) is None


def test_a_tag_key_given_twice_is_refused_before_it_becomes_a_dict() -> None:
    """S3's InvalidTag ("Cannot provide multiple Tags with the same key"),
    whether the values differ or not; keys differing in case are two keys."""
    tag = "<Tag><Key>{}</Key><Value>{}</Value></Tag>"
    for second in (("k", "w"), ("k", "v")):
        doc = f"<Tagging><TagSet>{tag.format('k', 'v')}{tag.format(*second)}</TagSet></Tagging>"
        with pytest.raises(errors.InvalidTag, match="multiple Tags with the same key"):
            xml.parse_tagging(doc.encode())
        with pytest.raises(errors.InvalidTag, match="multiple Tags with the same key"):
            hdr.tags(f"k=v&{second[0]}={second[1]}")
        with pytest.raises(errors.InvalidTag):
            hdr.put_header("b", "k", {"x-amz-tagging": f"k=v&{second[0]}={second[1]}"})
    doc = f"<Tagging><TagSet>{tag.format('k', 'v')}{tag.format('K', 'w')}</TagSet></Tagging>"
    assert xml.parse_tagging(doc.encode()) == {"k": "v", "K": "w"}
    assert hdr.tags("k=v&K=w&e=") == {"k": "v", "K": "w", "e": ""}
    assert hdr.tags("k%3D=v&k=w") == {"k=": "v", "k": "w"}


def test_bucket_tagging_document() -> None:
    doc = (
        f'<Tagging xmlns="{xml.NS}"><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag>'
        "<Tag><Key>empty</Key><Value></Value></Tag></TagSet></Tagging>"
    )
    assert xml.parse_bucket_tagging(doc.encode()) == {"team": "blue", "empty": ""}
    assert xml.parse_bucket_tagging(b"<Tagging><TagSet/></Tagging>") == {}
    with pytest.raises(errors.MalformedXML, match="TagSet"):
        xml.parse_bucket_tagging(b"<Tagging/>")  # not a way to remove them by accident
    with pytest.raises(errors.InvalidTag, match="same key"):
        xml.parse_bucket_tagging(
            b"<Tagging><TagSet><Tag><Key>k</Key><Value>1</Value></Tag>"
            b"<Tag><Key>k</Key><Value>2</Value></Tag></TagSet></Tagging>"
        )
    with pytest.raises(errors.MalformedXML):
        xml.parse_bucket_tagging(b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>")
    # GetBucketTagging answers the same document GetObjectTagging does.
    root = ET.fromstring(xml.tagging({"team": "blue"}))
    assert root.tag == f"{{{xml.NS}}}Tagging"
    tag = root.find(f"{{{xml.NS}}}TagSet/{{{xml.NS}}}Tag")
    assert tag is not None and [c.text for c in tag] == ["team", "blue"]


def test_setting_a_configuration_not_offered_names_it() -> None:
    """Reading one answers "none" (node/s3/configs.py); setting one is
    NotImplemented, saying what tristore does not offer."""
    for sub in UNOFFERED:
        assert route("GET", "b", "", {sub: ""})[1].startswith("get_"), sub
        with pytest.raises(errors.NotImplemented, match="tristore does not offer") as e:
            route("PUT", "b", "", {sub: ""})
        assert f"PUT on a bucket with ?{sub}" in str(e.value)
    with pytest.raises(errors.NotImplemented, match="tristore does not offer Object Lock"):
        route("PUT", "b", "", {"object-lock": ""})
    with pytest.raises(errors.NotImplemented, match=r"supported by this S3 endpoint$"):
        route("PUT", "b", "", {"inventory": "", "id": "x"})


def test_none_configured_documents() -> None:
    for tag in ("BucketLoggingStatus", "NotificationConfiguration", "AccelerateConfiguration"):
        root = ET.fromstring(xml.empty_config(tag))
        assert (root.tag, list(root), root.text) == (f"{{{xml.NS}}}{tag}", [], None)
    root = ET.fromstring(xml.request_payment("BucketOwner"))
    assert root.tag == f"{{{xml.NS}}}RequestPaymentConfiguration"
    assert root.findtext(f"{{{xml.NS}}}Payer") == "BucketOwner"


def test_an_acl_policy_is_read_as_the_canned_acl_that_makes_it() -> None:
    """Each distinct canned ACL's policy reads back as it, its grants in any
    order; any other grant set is None (refused by PutObjectAcl)."""
    for canned in xml.DISTINCT_CANNED:
        grants = xml.parse_acl(xml.acl("alice", canned))
        assert xml.canned_of(grants, "alice") == canned
        assert xml.canned_of(grants[::-1], "alice") == canned
        assert xml.canned_of(grants, "bob") is None  # another owner's
    # Those that grant what private does here read as private.
    assert xml.canned_of(xml.parse_acl(xml.acl("alice", "bucket-owner-read")), "alice") == (
        "private"
    )
    stranger = xml.Grant("CanonicalUser", "mallory", "READ")
    owner = xml.Grant("CanonicalUser", "alice", "FULL_CONTROL")
    everyone_write = xml.Grant("Group", xml.ALL_USERS, "WRITE")
    for grants in ([], [owner, stranger], [everyone_write], [owner, everyone_write]):
        assert xml.canned_of(grants, "alice") is None


def test_a_bucket_acl_is_private_or_not_implemented() -> None:
    private = xml.parse_acl(xml.acl("alice", "private"))
    assert private == [xml.Grant("CanonicalUser", "alice", "FULL_CONTROL")]
    bucket_pages.refuse_bucket_grants(private, "alice")  # what GetBucketAcl answers
    bucket_pages.refuse_bucket_acl({})
    bucket_pages.refuse_bucket_acl({"x-amz-acl": "private"})
    public = xml.parse_acl(xml.acl("alice", "public-read"))
    assert public[1] == xml.Grant(
        "Group", "http://acs.amazonaws.com/groups/global/AllUsers", "READ"
    )
    for grants, owner, says in (
        (public, "alice", "READ to Group 'http://acs.amazonaws.com/groups/global/AllUsers'"),
        (private, "bob", "FULL_CONTROL to CanonicalUser 'alice'"),
        ([], "alice", "no grant at all"),
    ):
        with pytest.raises(errors.NotImplemented, match=says):
            bucket_pages.refuse_bucket_grants(grants, owner)
    for headers, says in (
        ({"x-amz-acl": "public-read"}, "x-amz-acl: public-read"),
        ({"x-amz-grant-read": 'uri="http://acs"'}, "x-amz-grant-read"),
    ):
        with pytest.raises(errors.NotImplemented, match=says):
            bucket_pages.refuse_bucket_acl(headers)
    with pytest.raises(errors.MalformedXML):
        xml.parse_acl(b"<AccessControlPolicy><AccessControlList><Grant/></AccessControlList>"
                      b"</AccessControlPolicy>")  # fmt: skip
    with pytest.raises(errors.MalformedXML):
        xml.parse_acl(b"")


def test_an_error_about_a_delete_marker_names_it() -> None:
    """S3's headers of a 404 whose key's current version is a delete marker,
    and of a 405 for a marker asked for by id (its Last-Modified too)."""
    marker = errors.DeleteMarker("v1", 1_445_412_480_000)
    assert hdr.error_headers(errors.NoSuchKey("x", marker)) == {
        "x-amz-delete-marker": "true",
        "x-amz-version-id": "v1",
    }
    assert hdr.error_headers(errors.MethodNotAllowed("x", marker)) == {
        "x-amz-delete-marker": "true",
        "x-amz-version-id": "v1",
        "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    assert hdr.error_headers(errors.NoSuchKey("x")) == {}


def test_every_error_has_an_http_status() -> None:
    assert set(errors.BY_CODE) <= set(errors.HTTP_STATUS)
    table = {
        "NoSuchBucket": 404, "NoSuchKey": 404, "AccessDenied": 403,
        "SignatureDoesNotMatch": 403, "PreconditionFailed": 412, "InvalidRange": 416,
        "BucketNotEmpty": 409, "NotModified": 304, "NotImplemented": 501,
        "QuorumUnavailable": 503, "InternalError": 500,
    }  # fmt: skip
    for code, status in table.items():
        assert errors.http_status(errors.BY_CODE[code]("x")) == status


def test_create_bucket_body() -> None:
    """None, or a CreateBucketConfiguration (boto3's, with S3's namespace);
    anything else is MalformedXML, as S3 answers it."""
    assert xml.parse_create_bucket(b"") == ""
    assert xml.parse_create_bucket(b"  \n") == ""
    doc = (
        b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
    )
    assert xml.parse_create_bucket(doc) == "eu-west-1"
    assert xml.parse_create_bucket(b"<CreateBucketConfiguration/>") == ""
    for bad in (b"not xml at all", b"<Other/>", b"<CreateBucketConfiguration>"):
        with pytest.raises(errors.MalformedXML):
            xml.parse_create_bucket(bad)


def _buckets(*names: str) -> list[BucketInfo]:
    return [BucketInfo(n, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) for n in names]


def test_list_buckets_pages_by_name_with_an_opaque_token() -> None:
    """ListBuckets' prefix, max-buckets and continuation-token (S3's since 2024)."""
    every = _buckets("b-c", "a-x", "b-a", "b-b", "c-1")
    page, token = bucket_pages.bucket_page(every, "b-", 2, "")
    assert [b.name for b in page] == ["b-a", "b-b"] and token
    after = bucket_pages.bucket_after(token)
    assert after == "b-b" and "b-b" not in token  # opaque, as S3's
    page, token = bucket_pages.bucket_page(every, "b-", 2, after)
    assert [b.name for b in page] == ["b-c"] and token == ""
    page, token = bucket_pages.bucket_page(every, None, bucket_pages.MAX_BUCKETS, "")
    assert [b.name for b in page] == ["a-x", "b-a", "b-b", "b-c", "c-1"] and token == ""
    doc = ET.fromstring(xml.list_buckets(page[:1], "root", "us-east-1", "b-", "tok"))
    ns = {"s3": xml.NS}
    assert doc.findtext("s3:Prefix", namespaces=ns) == "b-"
    assert doc.findtext("s3:ContinuationToken", namespaces=ns) == "tok"
    assert doc.findtext("s3:Buckets/s3:Bucket/s3:BucketRegion", namespaces=ns) == "us-east-1"
    bare = ET.fromstring(xml.list_buckets(page[:1], "root"))
    assert bare.find("s3:Prefix", ns) is None and bare.find("s3:ContinuationToken", ns) is None


@pytest.mark.parametrize("raw", ["0", "-3", "10001", "2000000", "many", ""])
def test_max_buckets_out_of_range(raw: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="max-buckets"):
        bucket_pages.max_buckets(raw)


def test_max_buckets_in_range() -> None:
    assert bucket_pages.max_buckets(None) == 10_000
    assert bucket_pages.max_buckets("1") == 1
    assert bucket_pages.max_buckets("10000") == 10_000


@pytest.mark.parametrize("token", ["", "garbage!", "Yi1i", base64.urlsafe_b64encode(b"x").decode()])
def test_bad_list_buckets_token(token: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="continuation token"):
        bucket_pages.bucket_after(token)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, ("", False)),
        ({"amz-sdk-invocation-id": "a1b2-c3"}, ("a1b2-c3", False)),
        (
            {"amz-sdk-invocation-id": "a1b2-c3", "amz-sdk-request": "attempt=1; max=3"},
            ("a1b2-c3", False),
        ),
        (
            {"amz-sdk-invocation-id": "a1b2-c3", "amz-sdk-request": "attempt=2; max=3"},
            ("a1b2-c3", True),
        ),
        (
            {
                "amz-sdk-invocation-id": "a1b2-c3",
                "amz-sdk-request": "ttl=20261205T000000Z; attempt=3",
            },
            ("a1b2-c3", True),
        ),
        # Not an id a version can keep: ignored, the PUT goes on as a first try.
        ({"amz-sdk-invocation-id": "not an id!", "amz-sdk-request": "attempt=2"}, ("", False)),
        ({"amz-sdk-invocation-id": "x" * 65, "amz-sdk-request": "attempt=2"}, ("", False)),
        # An attempt number without an id cannot look for anything.
        ({"amz-sdk-request": "attempt=2"}, ("", False)),
        ({"amz-sdk-invocation-id": "a1", "amz-sdk-request": "max-attempt=2"}, ("a1", False)),
    ],
)
def test_an_sdk_retry_is_told_by_its_invocation_id_and_attempt(
    headers: dict[str, str], expected: tuple[str, bool]
) -> None:
    assert hdr.sdk_attempt(headers) == expected


def test_get_object_attributes_asks_by_a_header_and_answers_those() -> None:
    """GET ?attributes is GetObjectAttributes; x-amz-object-attributes names
    what it answers (S3's names, comma-separated, spaces allowed); missing
    or naming another is InvalidArgument. The answer: the ETag unquoted, the
    checksum by algorithm, the parts' count of an object uploaded in parts."""
    assert route("GET", "b", "k", {"attributes": ""}) == (
        "GetObjectAttributes", "get_object_attributes",
    )  # fmt: skip
    assert xml.parse_object_attributes("ETag, ObjectSize,StorageClass") == {
        "ETag", "ObjectSize", "StorageClass",
    }  # fmt: skip
    for header, says in ((None, "missing or empty"), (" , ", "missing"), ("ETag,Size", "Size")):
        with pytest.raises(errors.InvalidArgument, match=says):
            xml.parse_object_attributes(header)
    info = ObjectInfo(
        "b", "k", 11, "abc-2", "", {}, "v1", dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
        checksum_algorithm="crc64nvme", checksum_type="FULL_OBJECT", checksum="AAAAAAAAAAA=",
        part_sizes=(6, 5),
    )  # fmt: skip
    root = ET.fromstring(xml.object_attributes(info, frozenset(xml.OBJECT_ATTRIBUTES)))
    ns = f"{{{xml.NS}}}"
    assert root.tag == f"{ns}GetObjectAttributesResponse"
    assert [el.tag.removeprefix(ns) for el in root] == list(xml.OBJECT_ATTRIBUTES)
    assert root.findtext(f"{ns}ETag") == "abc-2"
    assert root.findtext(f"{ns}Checksum/{ns}ChecksumCRC64NVME") == "AAAAAAAAAAA="
    assert root.findtext(f"{ns}Checksum/{ns}ChecksumType") == "FULL_OBJECT"
    assert root.findtext(f"{ns}ObjectParts/{ns}PartsCount") == "2"
    assert (root.findtext(f"{ns}StorageClass"), root.findtext(f"{ns}ObjectSize")) == (
        "STANDARD", "11",
    )  # fmt: skip
    one = dataclasses.replace(info, part_sizes=(), checksum="", checksum_algorithm="")
    root = ET.fromstring(xml.object_attributes(one, frozenset({"ObjectParts", "Checksum"})))
    assert list(root) == []  # neither: one part, no checksum
