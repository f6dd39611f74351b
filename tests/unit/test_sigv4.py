"""The request signer and the verifier's pieces (tristore.sigv4), the
credential lookup (tristore.credentials)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tristore import credentials, errors, sigv4
from tristore.pb import objects_pb2

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 2, 1, 2, 3, tzinfo=dt.UTC)
CREDS = credentials.Credentials("TKEXAMPLEKEY0000001", "s3cr3t")


def test_signing_key_matches_aws_documentation() -> None:
    # "Examples of how to derive a signing key for Signature Version 4".
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signature_matches_aws_s3_get_example() -> None:
    # The S3 SigV4 header example (GET /test.txt with a Range header).
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1")
    to_sign = (
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )
    assert sigv4.signature(key, to_sign) == (
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def _verify(
    md: list[tuple[str, str]],
    method: str,
    msg: object,
    secret: str = "s3cr3t",
    streamed: bool = False,
) -> bool:
    signed = sigv4.parse(md)
    assert signed is not None
    sigv4.check_time(signed, NOW)
    key = sigv4.signing_key(secret, signed.date, signed.region)
    payload = sigv4.payload_of(msg, streamed)
    sha = sigv4.payload_sha256(payload)
    want = sigv4.expected(signed, key, method, sigv4.resource_of(payload), sha)
    return sigv4.matches(want, signed.signature) and sha == signed.payload_sha256


METHOD = "/tristore.v1.ObjectService/GetObject"


def test_a_signed_request_verifies_and_names_its_resource() -> None:
    msg = objects_pb2.GetObjectRequest(bucket="b", key="k", version_id="v1")
    md = credentials.Signer(CREDS).metadata(METHOD, msg, NOW)
    assert dict(md)[sigv4.DATE_KEY] == "20261202T010203Z"
    assert dict(md)[sigv4.AUTH_KEY].startswith(
        "AWS4-HMAC-SHA256 Credential=TKEXAMPLEKEY0000001/20261202/us-east-1/s3/aws4_request, "
    )
    assert sigv4.resource_of(msg) == ("b", "k", "v1")
    assert _verify(md, METHOD, msg)


def test_tampered_message_method_or_secret_fails() -> None:
    msg = objects_pb2.GetObjectRequest(bucket="b", key="k")
    md = credentials.Signer(CREDS).metadata(METHOD, msg, NOW)
    assert not _verify(md, METHOD, objects_pb2.GetObjectRequest(bucket="b", key="other"))
    assert not _verify(md, "/tristore.v1.ObjectService/DeleteObject", msg)
    assert not _verify(md, METHOD, msg, secret="wrong")


def test_a_client_stream_is_signed_by_its_header() -> None:
    header = objects_pb2.PutObjectHeader(bucket="b", key="k", metadata={"z": "1", "a": "2"})
    method = "/tristore.v1.ObjectService/PutObject"
    md = credentials.Signer(CREDS).metadata(method, header, NOW)
    first = objects_pb2.PutObjectRequest(header=header, data=b"body bytes")
    # The server sees the first message (header and a chunk); the header is what counts.
    again = objects_pb2.PutObjectRequest()
    again.ParseFromString(first.SerializeToString())
    assert _verify(md, method, again, streamed=True)
    assert sigv4.resource_of(sigv4.payload_of(again, streamed=True)) == ("b", "k", "")
    # The same message in a unary call (PutSmallObject) is signed whole, body included.
    assert not _verify(md, "/tristore.v1.ObjectService/PutSmallObject", again)
    small = "/tristore.v1.ObjectService/PutSmallObject"
    md_small = credentials.Signer(CREDS).metadata(small, first, NOW)
    assert _verify(md_small, small, again)
    tampered = objects_pb2.PutObjectRequest(header=header, data=b"other bytes")
    assert not _verify(md_small, small, tampered)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=8))
def test_payload_digest_survives_the_wire(meta: dict[str, str]) -> None:
    header = objects_pb2.PutObjectHeader(bucket="b", key="k", metadata=meta)
    parsed = objects_pb2.PutObjectHeader()
    parsed.ParseFromString(header.SerializeToString())
    assert sigv4.payload_sha256(parsed) == sigv4.payload_sha256(header)


def test_time_window_is_fifteen_minutes() -> None:
    msg = objects_pb2.HeadBucketRequest(bucket="b")
    signer = credentials.Signer(CREDS)
    old = sigv4.parse(signer.metadata(METHOD, msg, NOW - dt.timedelta(minutes=16)))
    ahead = sigv4.parse(signer.metadata(METHOD, msg, NOW + dt.timedelta(minutes=16)))
    near = sigv4.parse(signer.metadata(METHOD, msg, NOW - dt.timedelta(minutes=14)))
    assert old is not None and ahead is not None and near is not None
    for signed in (old, ahead):
        with pytest.raises(errors.RequestTimeTooSkewed):
            sigv4.check_time(signed, NOW)
    sigv4.check_time(near, NOW)


@pytest.mark.parametrize(
    "auth",
    [
        "Bearer x",
        "AWS4-HMAC-SHA256 Credential=AK/20261202/us-east-1/s3/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=TKEXAMPLEKEY0000001/20261202/us-east-1/ec2/aws4_request, "
        "SignedHeaders=x-tristore-content-sha256;x-tristore-date, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_is_access_denied(auth: str) -> None:
    md = [(sigv4.AUTH_KEY, auth), (sigv4.DATE_KEY, "20261202T010203Z"), (sigv4.SHA_KEY, "0")]
    with pytest.raises(errors.AccessDenied):
        sigv4.parse(md)


def test_no_authorization_is_anonymous() -> None:
    assert sigv4.parse([("x-other", "1")]) is None


def test_credentials_from_env_then_profile(tmp_path: Path) -> None:
    env = {credentials.ACCESS_KEY_ENV: "TKA0000000", credentials.SECRET_KEY_ENV: "sa"}
    assert credentials.from_env(env) == credentials.Credentials("TKA0000000", "sa")
    with pytest.raises(errors.InvalidArgument):
        credentials.from_env({credentials.ACCESS_KEY_ENV: "TKA0000000"})
    f = tmp_path / "credentials"
    f.write_text(
        "[default]\naccess_key_id = TKD0000000\nsecret_access_key = sd\n\n"
        "[ops]\naccess_key_id = TKO0000000\nsecret_access_key = so\nregion = eu-west-1\n"
    )
    fenv = {credentials.FILE_ENV: str(f)}
    assert credentials.from_env(fenv) == credentials.Credentials("TKD0000000", "sd")
    ops = credentials.from_env({**fenv, credentials.PROFILE_ENV: "ops"})
    assert ops == credentials.Credentials("TKO0000000", "so", "eu-west-1")
    with pytest.raises(errors.InvalidArgument, match="no profile"):
        credentials.from_env({**fenv, credentials.PROFILE_ENV: "nope"})
    assert credentials.from_env({credentials.FILE_ENV: str(tmp_path / "none")}) is None


def test_sealed_secret_file_is_private_and_bound_to_its_key_id(tmp_path: Path) -> None:
    from tristore.kms import LocalKeyFile

    kms = LocalKeyFile.create(tmp_path / "master.key")
    path = tmp_path / "auth" / "root.secret"
    credentials.write_sealed_file(path, kms, "TKROOT00000", "the-secret")
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"the-secret" not in path.read_bytes()
    assert credentials.read_sealed_file(path, kms, "TKROOT00000") == "the-secret"
    with pytest.raises(errors.KeyUnavailable):
        credentials.read_sealed_file(path, kms, "TKOTHER0000")


# -- Signature Version 2 presigned URLs ----------------------------------------


def test_v2_matches_the_documented_example() -> None:
    """S3's documentation of query string authentication (Signature Version 2):
    GET /johnsmith/photos/puppy.jpg, Expires 1175139620."""
    to_sign = sigv4.v2_string_to_sign("GET", {}, 1175139620, "/johnsmith/photos/puppy.jpg", [])
    assert to_sign == "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert sigv4.v2_signature(secret, to_sign) == "NpgCjnDzrM+WFzoENXmpNDUsSn8="


def test_v2_signs_sub_resources_amz_headers_and_content_type_only() -> None:
    headers = {"content-type": "text/plain", "x-amz-meta-b": " two  words ", "x-amz-acl": "private"}
    query = [("versionId", "v1"), ("AWSAccessKeyId", "AK"), ("uploads", ""), ("prefix", "p")]
    to_sign = sigv4.v2_string_to_sign("PUT", headers, 9, "/b/k%20x", query)
    assert to_sign == (
        "PUT\n\ntext/plain\n9\nx-amz-acl:private\nx-amz-meta-b:two words\n"
        "/b/k%20x?uploads&versionId=v1"
    )


@pytest.mark.parametrize(
    "query, says",
    [
        ({"AWSAccessKeyId": "AK", "Signature": "s"}, "lacks Expires"),
        ({"AWSAccessKeyId": "AK", "Expires": "soon", "Signature": "s"}, "epoch"),
        ({"AWSAccessKeyId": "AK", "Expires": "999", "Signature": "s"}, "expired"),
        ({"AWSAccessKeyId": "AK", "Expires": str(2**40), "Signature": "s"}, "at most a week"),
    ],
)
def test_v2_presigned_urls_that_are_refused(query: dict[str, str], says: str) -> None:
    with pytest.raises(errors.AccessDenied, match=says):
        sigv4.parse_v2_presigned(query)


def test_v2_presigned_url_within_its_time_is_taken() -> None:
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    expires = int(now.timestamp()) + 3600
    got = sigv4.parse_v2_presigned(
        {"AWSAccessKeyId": "AK", "Expires": str(expires), "Signature": "c2ln"}, now=now
    )
    assert (got.access_key_id, got.expires, got.signature) == ("AK", expires, "c2ln")
