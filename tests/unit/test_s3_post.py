"""POST Object (browser form uploads) without a server: the form's policy
(node/s3/post_policy.py), its Signature V4 or V2 (tristore/sigv4.py, checked
against what boto3 signs), and the form read and streamed (node/s3/post.py)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import boto3
import pytest
from aiohttp import FormData, streams
from aiohttp.test_utils import make_mocked_request
from botocore.config import Config

from node.s3 import post, post_policy, xml
from node.s3.server import route
from tristore import credentials, errors, presign, sigv4

pytestmark = pytest.mark.unit

AKID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _b64(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _policy(*conditions: Any, expiration: str = "2026-12-05T13:00:00Z") -> post_policy.PostPolicy:
    return post_policy.parse(_b64({"expiration": expiration, "conditions": list(conditions)}))


def _presigned_post(v2: bool = False, **kw: Any) -> dict[str, Any]:
    """boto3's form; signed with Signature V2 (its default) if ``v2``."""
    s3 = boto3.client(
        "s3",
        endpoint_url="https://127.0.0.1:7601",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=None if v2 else Config(signature_version="s3v4"),
    )
    try:
        out: dict[str, Any] = s3.generate_presigned_post(**kw)
    finally:
        s3.close()
    return out


def _lower(fields: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in fields.items()}


# -- the policy --------------------------------------------------------------------


def test_what_boto3_signs_is_parsed_checked_and_its_signature_matches() -> None:
    made = _presigned_post(
        Bucket="photos",
        Key="up/${filename}",
        Fields={"Content-Type": "image/png", "x-amz-meta-who": "ann"},
        Conditions=[
            {"Content-Type": "image/png"},
            {"x-amz-meta-who": "ann"},
            ["content-length-range", 1, 1000],
        ],
        ExpiresIn=600,
    )
    assert made["url"] == "https://127.0.0.1:7601/photos"
    fields = _lower(made["fields"])
    signed = sigv4.parse_post(fields)
    assert (signed.access_key_id, signed.region) == (AKID, "us-east-1")
    key = sigv4.signing_key(SECRET, signed.date, signed.region)
    assert sigv4.post_signature(key, fields["policy"]) == signed.signature
    wrong = sigv4.signing_key("x" * 40, signed.date, signed.region)
    assert sigv4.post_signature(wrong, fields["policy"]) != signed.signature
    policy = post_policy.parse(fields["policy"])
    assert policy.length_range == (1, 1000)
    form = {**fields, "key": "up/cat.png"}  # ${filename} filled in
    post_policy.check(policy, form, "photos")
    with pytest.raises(errors.AccessDenied, match="Policy Condition failed"):
        post_policy.check(policy, form, "other-bucket")
    # Ten minutes past its expiration.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1200)
    with pytest.raises(errors.AccessDenied) as e:
        post_policy.check(policy, form, "photos", now=later)
    assert e.value.message == "Invalid according to Policy: Policy expired."


def test_what_boto3_signs_with_v2_is_checked_as_s3_checks_it() -> None:
    """A boto3 client not told s3v4 signs a form with Signature V2
    (botocore's HmacV1PostAuth): its signature is the HMAC-SHA1 of the
    policy with the secret; its policy is checked as a V4 form's, the
    signature's fields needing no condition."""
    made = _presigned_post(
        v2=True,
        Bucket="photos",
        Key="up/${filename}",
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 1000]],
        ExpiresIn=600,
    )
    assert set(made["fields"]) == {"Content-Type", "key", "AWSAccessKeyId", "policy", "signature"}
    fields = _lower(made["fields"])
    assert sigv4.post_signature_version(fields) == 2
    assert fields["awsaccesskeyid"] == AKID
    assert sigv4.v2_post_signature(SECRET, fields["policy"]) == fields["signature"]
    assert sigv4.v2_post_signature("x" * 40, fields["policy"]) != fields["signature"]
    other = _presigned_post(v2=True, Bucket="photos", Key="elsewhere")["fields"]["policy"]
    assert sigv4.v2_post_signature(SECRET, other) != fields["signature"]
    policy = post_policy.parse(fields["policy"])
    assert policy.length_range == (1, 1000)
    form = {**fields, "key": "up/cat.png"}  # ${filename} filled in
    post_policy.check(policy, form, "photos")
    with pytest.raises(errors.AccessDenied) as e:
        post_policy.check(policy, {**form, "content-type": "text/html"}, "photos")
    assert e.value.message == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]'
    )
    with pytest.raises(errors.AccessDenied) as e:
        post_policy.check(policy, {**form, "acl": "public-read"}, "photos")
    assert e.value.message == "Invalid according to Policy: Extra input fields: acl"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1200)
    with pytest.raises(errors.AccessDenied, match="Policy expired"):
        post_policy.check(policy, form, "photos", now=later)


def test_which_signature_a_form_carries_and_never_both() -> None:
    v4 = _lower(_presigned_post(Bucket="b", Key="k")["fields"])
    v2 = _lower(_presigned_post(v2=True, Bucket="b", Key="k")["fields"])
    assert sigv4.post_signature_version(v4) == 4
    assert sigv4.post_signature_version(v2) == 2
    assert sigv4.post_signature_version({"key": "k"}) == 0
    assert sigv4.post_signature_version({"key": "k", "policy": v2["policy"]}) == 0
    assert sigv4.post_signature_version({"key": "k", "signature": "s"}) == 2
    for mixed in (
        {**v4, "awsaccesskeyid": AKID},
        {**v4, "signature": v2["signature"]},
        {**v2, "x-amz-credential": v4["x-amz-credential"]},
    ):
        with pytest.raises(errors.InvalidArgument) as e:
            sigv4.post_signature_version(mixed)
        assert e.value.message.startswith("Only one auth mechanism allowed; ")
        assert errors.http_status(e.value) == 400


def test_conditions_exact_prefix_and_extra_fields() -> None:
    policy = _policy(
        {"bucket": "b"},
        ["starts-with", "$key", "user/ann/"],
        ["eq", "$Content-Type", "text/plain"],
        ["starts-with", "$x-amz-meta-tag", ""],
        {"success_action_status": "201"},
    )
    good = {
        "key": "user/ann/a.txt",
        "content-type": "text/plain",
        "x-amz-meta-tag": "anything",
        "success_action_status": "201",
        "policy": "...",
        "x-amz-signature": "...",
        "x-ignore-this": "not named",
    }
    post_policy.check(policy, good, "b", now=NOW)
    failures = {
        "key": ("user/bob/a.txt", '["starts-with", "$key", "user/ann/"]'),
        "content-type": ("text/html", '["eq", "$Content-Type", "text/plain"]'),
        "success_action_status": ("200", '["eq", "$success_action_status", "201"]'),
    }
    for name, (value, shown) in failures.items():
        with pytest.raises(errors.AccessDenied) as e:
            post_policy.check(policy, {**good, name: value}, "b", now=NOW)
        assert e.value.message == f"Invalid according to Policy: Policy Condition failed: {shown}"
    with pytest.raises(errors.AccessDenied) as e:
        post_policy.check(policy, {**good, "acl": "private", "x-amz-meta-more": "1"}, "b", now=NOW)
    assert e.value.message == (
        "Invalid according to Policy: Extra input fields: acl, x-amz-meta-more"
    )
    # The bucket is an input too: a policy must name it.
    with pytest.raises(errors.AccessDenied, match=r"Extra input fields: bucket$"):
        post_policy.check(_policy({"key": "k"}), {"key": "k"}, "b", now=NOW)


def test_starts_with_only_where_s3_allows_it() -> None:
    for name in ("bucket", "success_action_status", "x-amz-credential", "x-amz-storage-class"):
        policy = _policy({"bucket": "b"}, ["starts-with", f"${name}", ""], {"key": "k"})
        with pytest.raises(errors.AccessDenied, match="Policy Condition failed"):
            post_policy.check(policy, {"key": "k", name: "b"}, "b", now=NOW)
    # Content-Type: each type of a list must start so.
    policy = _policy({"bucket": "b"}, {"key": "k"}, ["starts-with", "$Content-Type", "image/"])
    post_policy.check(policy, {"key": "k", "content-type": "image/png, image/jpeg"}, "b", now=NOW)
    with pytest.raises(errors.AccessDenied):
        post_policy.check(policy, {"key": "k", "content-type": "image/png,text/html"}, "b", now=NOW)


def test_content_length_ranges_meet() -> None:
    assert _policy(["content-length-range", 0, 100]).length_range == (0, 100)
    assert _policy(["content-length-range", "10", "100"]).length_range == (10, 100)
    both = _policy(["content-length-range", 0, 100], ["content-length-range", 10, 1000])
    assert both.length_range == (10, 100)
    assert _policy({"key": "k"}).length_range is None


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("not base64!", "Invalid JSON."),
        (base64.b64encode(b"{not json").decode(), "Invalid JSON."),
        (_b64(["a list"]), "Invalid JSON."),
        (_b64({"conditions": []}), "Policy missing expiration."),
        (_b64({"expiration": "2026-12-05T13:00:00Z"}), "Policy missing conditions."),
        (_b64({"expiration": "tomorrow", "conditions": []}), "Invalid 'expiration' value"),
        (_b64({"expiration": "2026-12-05T13:00:00Z", "conditions": {}}), "'conditions'"),
        (_b64({"expiration": "2026-12-05T13:00:00Z", "conditions": [["eq", "key", "k"]]}),
         "Invalid Condition"),
        (_b64({"expiration": "2026-12-05T13:00:00Z", "conditions": [["in", "$key", "k"]]}),
         "Invalid Condition"),
        (_b64({"expiration": "2026-12-05T13:00:00Z", "conditions": [{"a": "1", "b": "2"}]}),
         "Invalid Condition"),
        (_b64({"expiration": "2026-12-05T13:00:00Z",
               "conditions": [["content-length-range", 10, 1]]}), "content-length-range"),
        (_b64({"expiration": "2026-12-05T13:00:00Z",
               "conditions": [["content-length-range", -1, 1]]}), "content-length-range"),
    ],
)  # fmt: skip
def test_a_malformed_policy_is_an_invalid_policy_document(policy: str, says: str) -> None:
    with pytest.raises(errors.InvalidPolicyDocument) as e:
        post_policy.parse(policy)
    assert e.value.message.startswith("Invalid Policy: ")
    assert says in e.value.message
    assert errors.http_status(e.value) == 400


def test_the_form_signature_fields_are_checked() -> None:
    good = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{AKID}/20261205/us-east-1/s3/aws4_request",
        "x-amz-date": "20261205T120000Z",
        "x-amz-signature": "a" * 64,
    }
    assert sigv4.parse_post(good).date == "20261205"
    for name, value in (
        ("x-amz-algorithm", "AWS4-HMAC-SHA1"),
        ("x-amz-credential", f"{AKID}/20261205/us-east-1/s3"),
        ("x-amz-date", "2026-12-05"),
        ("x-amz-date", "20261206T120000Z"),  # not the credential's day
        ("x-amz-signature", "zz"),
    ):
        with pytest.raises(errors.InvalidArgument):
            sigv4.parse_post({**good, name: value})


# -- the form ----------------------------------------------------------------------


async def _request(form: FormData, content_type: str | None = None) -> Any:
    payload = form()

    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        async def write(self, b: bytes) -> None:
            self.data += b

    sink = Sink()
    await payload.write(sink)  # type: ignore[arg-type]
    reader = streams.StreamReader(
        mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop()
    )
    reader.feed_data(bytes(sink.data))
    reader.feed_eof()
    headers = {"Content-Type": content_type or str(payload.content_type)}
    return make_mocked_request("POST", "/b", headers=headers, payload=reader)


def _form(*fields: tuple[str, str], file: bytes | None = None) -> FormData:
    form = FormData(default_to_multipart=True)
    for name, value in fields:
        form.add_field(name, value)
    if file is not None:
        form.add_field("file", file, filename="cat.png", content_type="image/png")
        form.add_field("after-the-file", "ignored")
    return form


async def _all(it: AsyncIterator[bytes]) -> list[bytes]:
    return [piece async for piece in it]


def test_a_form_is_read_up_to_its_file_which_streams_in_pieces() -> None:
    body = bytes(range(256)) * 3000  # 768,000 bytes

    async def go() -> None:
        form = _form(("Key", "up/${filename}"), ("Content-Type", "image/png"), file=body)
        read = await post.read_form(await _request(form))
        assert read.fields == {"key": "up/${filename}", "content-type": "image/png"}
        assert read.filename == "cat.png"
        pieces = await _all(post.file_body(read.file, None))
        assert b"".join(pieces) == body
        assert max(len(p) for p in pieces) <= post.READ_PIECE < len(body)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("limits", "error"),
    [((0, 99), errors.EntityTooLarge), ((101, 1000), errors.EntityTooSmall), ((100, 100), None)],
)
def test_the_file_size_is_held_to_the_content_length_range(
    limits: tuple[int, int], error: type[errors.TristoreError] | None
) -> None:
    async def go() -> None:
        read = await post.read_form(await _request(_form(("key", "k"), file=b"x" * 100)))
        body = post.file_body(read.file, limits)
        if error is None:
            assert b"".join(await _all(body)) == b"x" * 100
            return
        with pytest.raises(error) as e:
            await _all(body)
        assert errors.http_status(e.value) == 400
        assert "nothing was stored" in e.value.message

    asyncio.run(go())


def test_forms_s3_refuses() -> None:
    async def refused(form: FormData, content_type: str | None = None) -> errors.TristoreError:
        with pytest.raises(errors.TristoreError) as e:
            await post.read_form(await _request(form, content_type))
        return e.value

    async def go() -> None:
        no_file = await refused(_form(("key", "k")))
        assert isinstance(no_file, errors.IncorrectNumberOfFilesInPostRequest)
        urlencoded = await refused(_form(("key", "k")), "application/x-www-form-urlencoded")
        assert isinstance(urlencoded, errors.PreconditionFailed)
        assert "multipart/form-data" in urlencoded.message
        big = await refused(_form(("key", "k"), ("policy", "p" * 30_000), file=b"x"))
        assert isinstance(big, errors.MaxPostPreDataLengthExceeded)
        twice = await refused(_form(("key", "k"), ("Key", "k2"), file=b"x"))
        assert isinstance(twice, errors.InvalidArgument)
        unbounded = await refused(_form(("key", "k")), "multipart/form-data")
        assert isinstance(unbounded, errors.MalformedPOSTRequest)

    asyncio.run(go())


def test_fields_a_put_would_send_as_headers() -> None:
    fields = {
        "key": "k",
        "acl": "private",
        "content-type": "text/plain",
        "cache-control": "no-cache",
        "x-amz-meta-who": "ann",
        "x-amz-checksum-crc32": "AAAAAA==",
        "x-amz-grant-read": "id=x",  # refused by the PUT header, as a PUT's is
        "success_action_status": "201",
        "policy": "p",
        "x-amz-credential": "c",
    }
    assert post.put_headers(fields) == {
        "x-amz-acl": "private",
        "content-type": "text/plain",
        "cache-control": "no-cache",
        "x-amz-meta-who": "ann",
        "x-amz-checksum-crc32": "AAAAAA==",
        "x-amz-grant-read": "id=x",
    }


def test_post_to_a_bucket_is_post_object_and_its_201_document() -> None:
    assert route("POST", "b", "", {}) == ("PostObject", "post_object")
    assert route("POST", "b", "", {"delete": ""})[0] == "DeleteObjects"
    doc = xml.post_response("https://h/b/a%20b", "b", "a b", "abc")
    assert doc.endswith(
        b"<PostResponse><Location>https://h/b/a%20b</Location><Bucket>b</Bucket>"
        b'<Key>a b</Key><ETag>"abc"</ETag></PostResponse>'
    )


def test_the_sdks_presigned_post_is_a_form_the_door_takes() -> None:
    """tristore.presign.presign_post (the SDK's Client.presign_post) signs
    what boto3's generate_presigned_post would: each field an exact-match
    condition unless one is given, ${filename} a key prefix, the bucket and
    the signature's fields named; the door's checks take it, and refuse it
    for another bucket, key, or after its expiration."""
    signer = credentials.Signer(credentials.Credentials(AKID, SECRET, "us-east-1"))
    made = presign.presign_post(
        signer,
        "photos",
        "up/${filename}",
        expires_in=600,
        fields={"Content-Type": "image/png", "x-amz-meta-who": "ann", "acl": "public-read"},
        conditions=[["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 1000]],
        endpoint_url="https://127.0.0.1:7601",
        now=NOW,
    )
    assert made.url == "https://127.0.0.1:7601/photos"
    fields = _lower(made.fields)
    assert fields["key"] == "up/${filename}" and fields["acl"] == "public-read"
    signed = sigv4.parse_post(fields)
    assert (signed.access_key_id, signed.region, signed.amz_date) == (
        AKID, "us-east-1", "20261205T120000Z",
    )  # fmt: skip
    key = sigv4.signing_key(SECRET, signed.date, signed.region)
    assert sigv4.post_signature(key, fields["policy"]) == signed.signature
    policy = post_policy.parse(fields["policy"])
    assert policy.expiration == NOW + dt.timedelta(seconds=600)
    assert policy.length_range == (1, 1000)
    form = {**fields, "key": "up/cat.png"}  # ${filename} filled in
    post_policy.check(policy, form, "photos", now=NOW)
    for bad, bucket in (
        ({**form, "key": "elsewhere/cat.png"}, "photos"),
        (form, "other-bucket"),
        ({**form, "content-type": "text/html"}, "photos"),
        ({**form, "acl": "public-read-write"}, "photos"),
    ):
        with pytest.raises(errors.AccessDenied, match="Policy Condition failed"):
            post_policy.check(policy, bad, bucket, now=NOW)
    with pytest.raises(errors.AccessDenied, match="Policy expired"):
        post_policy.check(policy, form, "photos", now=NOW + dt.timedelta(seconds=601))
    # An exact key, and what is refused before anything is signed.
    exact = presign.presign_post(signer, "photos", "a b.txt", endpoint_url="https://h:1", now=NOW)
    post_policy.check(post_policy.parse(exact.fields["policy"]), _lower(exact.fields), "photos",
                      now=NOW)  # fmt: skip
    for kw, says in (
        ({"fields": {"Key": "x"}}, "'key'"),
        ({"conditions": [["eq", "$acl"]]}, r"\[op, field, value\]"),
        ({"conditions": [{"a": "1", "b": "2"}]}, "one field"),
        ({"expires_in": 0}, "expires_in"),
    ):
        with pytest.raises(errors.InvalidArgument, match=says):
            presign.presign_post(signer, "photos", "k", endpoint_url="https://h:1", **kw)
    with pytest.raises(errors.InvalidArgument, match="access key"):
        presign.presign_post(None, "photos", "k", endpoint_url="https://h:1")
    with pytest.raises(errors.InvalidBucketName):
        presign.presign_post(signer, "Not_A_Bucket", "k", endpoint_url="https://h:1")
