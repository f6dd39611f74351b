"""S3 input rules: bucket names, keys, metadata, content types, list bounds, ranges,
tags, canned ACLs, storage classes, encryption, versioning states, copy directives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tristore import errors
from tristore import validation as v

pytestmark = pytest.mark.unit


# -- bucket names ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["abc", "a" * 63, "my.bucket-1", "1bucket", "a-b.c-d", "bucket9", "x.y.z", "a-----b"],
)
def test_valid_bucket_names(name: str) -> None:
    v.check_bucket_name(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "3 to 63"),
        ("ab", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("MyBucket", "lowercase"),
        ("my_bucket", "lowercase"),
        ("my bucket", "lowercase"),
        ("bücket", "lowercase"),
        ("-bucket", "begin and end"),
        ("bucket-", "begin and end"),
        (".bucket", "begin and end"),
        ("bucket.", "begin and end"),
        ("my..bucket", "adjacent periods"),
        ("192.168.1.1", "IP address"),
        ("10.0.0.255", "IP address"),
        ("xn--bucket", "reserves"),
        ("sthree-bucket", "reserves"),
        ("amzn-s3-demo-bucket", "reserves"),
        ("bucket-s3alias", "reserves"),
        ("bucket--ol-s3", "reserves"),
        ("bucket.mrap", "reserves"),
        ("bucket--x-s3", "reserves"),
    ],
)
def test_invalid_bucket_names(name: str, why: str) -> None:
    with pytest.raises(errors.InvalidBucketName, match=why):
        v.check_bucket_name(name)


@pytest.mark.parametrize("name", ["192.168.1.300", "256.256.256.256", "999.0.0.1"])
def test_formatted_as_an_ip_address_is_refused_even_when_not_a_valid_one(name: str) -> None:
    # S3: "must not be formatted as an IP address"; MinIO checks the form, not the value.
    with pytest.raises(errors.InvalidBucketName, match="IP address"):
        v.check_bucket_name(name)


def test_dotted_names_that_are_not_four_numbers_are_fine() -> None:
    for name in ("1.2.3", "a.1.2.3", "1.2.3.4.5", "v1.2.3.4a"):
        v.check_bucket_name(name)


# -- keys ------------------------------------------------------------------------


def test_empty_key() -> None:
    with pytest.raises(errors.InvalidArgument, match="empty"):
        v.check_key("")


@pytest.mark.parametrize(
    ("char", "width"), [("a", 1), ("é", 2), ("€", 3), ("😀", 4)], ids=["1B", "2B", "3B", "4B"]
)
def test_key_limit_is_1024_utf8_bytes(char: str, width: int) -> None:
    fits = char * (1024 // width) + "a" * (1024 % width)
    assert len(fits.encode()) == 1024
    v.check_key(fits)
    too_long = fits + "a"
    with pytest.raises(errors.KeyTooLongError, match="1025 bytes"):
        v.check_key(too_long)


def test_key_counts_bytes_not_characters() -> None:
    key = "é" * 513  # 513 characters, 1026 bytes
    assert len(key) < 1024
    with pytest.raises(errors.KeyTooLongError):
        v.check_key(key)


def test_key_must_be_valid_utf8() -> None:
    with pytest.raises(errors.InvalidArgument, match="UTF-8"):
        v.check_key("bad\ud800surrogate")


@pytest.mark.parametrize("key", ["a", "dir/sub/file.txt", "/leading", "sp ace", "ünï/😀", "a//b"])
def test_ordinary_keys(key: str) -> None:
    v.check_key(key)


# -- metadata --------------------------------------------------------------------


def test_metadata_none_and_empty() -> None:
    assert v.normalize_metadata(None) == {}
    assert v.normalize_metadata({}) == {}


def test_metadata_prefix_is_stripped_and_names_fold_to_lower_case() -> None:
    got = v.normalize_metadata({"X-Amz-Meta-Color": "Blue", "Owner": "Ann", " size ": "L"})
    assert got == {"color": "Blue", "owner": "Ann", "size": "L"}


def test_metadata_values_keep_their_case_and_unicode() -> None:
    assert v.normalize_metadata({"k": "MiXeD ünï"}) == {"k": "MiXeD ünï"}


@pytest.mark.parametrize(
    "name", ["", "   ", "x-amz-meta-", "two words", "colon:", "slash/", "ünï", "t\tab", "a(b)"]
)
def test_metadata_bad_names(name: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="metadata name"):
        v.normalize_metadata({name: "v"})


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nb", "nul\x00"])
def test_metadata_values_reject_cr_lf_nul(value: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="CR, LF or NUL"):
        v.normalize_metadata({"k": value})


def test_metadata_names_that_fold_together_are_rejected() -> None:
    with pytest.raises(errors.InvalidArgument, match="twice"):
        v.normalize_metadata({"Color": "a", "x-amz-meta-color": "b"})


def test_metadata_must_be_strings() -> None:
    with pytest.raises(errors.InvalidArgument, match="strings"):
        v.normalize_metadata({"k": 5})  # type: ignore[dict-item]


def test_metadata_limit_is_2048_bytes_exactly() -> None:
    at_limit = {"k": "v" * 2047}
    assert v.normalize_metadata(at_limit) == at_limit
    with pytest.raises(errors.MetadataTooLarge, match="2049 bytes"):
        v.normalize_metadata({"k": "v" * 2048})


def test_metadata_limit_counts_the_stripped_name() -> None:
    """The x-amz-meta- prefix is not stored, so it does not count."""
    assert v.normalize_metadata({"X-Amz-Meta-k": "v" * 2047}) == {"k": "v" * 2047}


def test_metadata_limit_counts_utf8_bytes_across_entries() -> None:
    meta = {"a": "é" * 511, "b": "é" * 511, "cd": "x" * 2}  # 1+1022 + 1+1022 + 2+2 = 2050
    with pytest.raises(errors.MetadataTooLarge, match="2050 bytes"):
        v.normalize_metadata(meta)
    meta["cd"] = ""  # 2048
    v.normalize_metadata(meta)


# -- content type, list bounds ----------------------------------------------------


def test_content_type() -> None:
    assert v.normalize_content_type(None) == v.DEFAULT_CONTENT_TYPE
    assert v.normalize_content_type("") == v.DEFAULT_CONTENT_TYPE
    assert v.normalize_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    v.normalize_content_type("a" * 1024)
    for bad in ("text/plain\r\nX-Evil: 1", "a\x00", "a" * 1025):
        with pytest.raises(errors.InvalidArgument):
            v.normalize_content_type(bad)


@pytest.mark.parametrize("n", [0, 1, 999, 1000])
def test_max_keys_in_bounds(n: int) -> None:
    assert v.cap_max_keys(n) == n


@pytest.mark.parametrize("n", [1001, 5000, 10**9, 2**31 - 1])
def test_max_keys_above_a_page_is_capped(n: int) -> None:
    """S3 answers at most 1,000 entries a page and caps a larger limit
    (aws s3 ls --page-size 5000, Hadoop S3A's paging.maximum=5000)."""
    assert v.cap_max_keys(n) == 1000


@pytest.mark.parametrize("name", ["max-keys", "max-uploads", "max-parts"])
@pytest.mark.parametrize("n", [-1, -1000, 2**31])
def test_max_keys_negative_or_past_int32_is_refused(name: str, n: int) -> None:
    with pytest.raises(errors.InvalidArgument, match=f"^{name} "):
        v.cap_max_keys(n, name)


def test_delimiter_length() -> None:
    v.check_delimiter("/")
    v.check_delimiter("x" * 1024)
    with pytest.raises(errors.InvalidArgument):
        v.check_delimiter("x" * 1025)


# -- ranges ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, -1)),
        ("bytes=-5", (-5, -1)),
        ("0-9", (0, 9)),
        ("  bytes=1-2 ", (1, 2)),
        ("bytes=0-0", (0, 0)),
        ("bytes=9-3", (9, 3)),  # syntactically fine; resolve_range refuses it
    ],
)
def test_parse_range_header(spec: str, parsed: tuple[int, int]) -> None:
    assert v.parse_range_header(spec) == parsed


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=1-2,4-5",
        "items=0-1",
        "bytes=1",
        "-",
        # Past int64 (the wire's range type): refused, never a traceback.
        "bytes=0-99999999999999999999999",
        "bytes=9223372036854775808-",
        "bytes=-9223372036854775808",
    ],
)
def test_parse_range_header_rejects_malformed(spec: str) -> None:
    with pytest.raises(errors.InvalidRange):
        v.parse_range_header(spec)


def test_suffix_of_zero_bytes_is_unsatisfiable() -> None:
    """``bytes=-0`` asks for nothing; it must not turn into 'the whole object'."""
    with pytest.raises(errors.InvalidRange):
        v.parse_range_header("bytes=-0")


@pytest.mark.parametrize(
    ("start", "end", "size", "resolved"),
    [
        (0, 9, 100, (0, 9)),
        (0, -1, 100, (0, 99)),
        (90, 200, 100, (90, 99)),  # the end is clamped, as in HTTP
        (99, 99, 100, (99, 99)),
        (99, -1, 100, (99, 99)),
        (-10, -1, 100, (90, 99)),
        (-100, -1, 100, (0, 99)),
        (-200, -1, 100, (0, 99)),  # a suffix longer than the object: all of it
        (0, 0, 1, (0, 0)),
        (-1, -1, 1, (0, 0)),
        (-5, -1, 0, (0, -1)),  # a suffix of an empty object: all of it, nothing (S3: 200)
    ],
)
def test_resolve_range(start: int, end: int, size: int, resolved: tuple[int, int]) -> None:
    assert v.resolve_range(start, end, size) == resolved


@pytest.mark.parametrize(
    ("start", "end", "size", "why"),
    [
        (100, -1, 100, "beyond"),
        (100, 200, 100, "beyond"),
        (5000, 6000, 100, "beyond"),
        (0, -1, 0, "beyond"),  # any range of an empty object
        (0, 0, 0, "beyond"),
        (5, 3, 100, "before its start"),
        (-5, 3, 100, "suffix"),
    ],
)
def test_resolve_range_unsatisfiable(start: int, end: int, size: int, why: str) -> None:
    with pytest.raises(errors.InvalidRange, match=why):
        v.resolve_range(start, end, size)


def test_an_empty_suffix_is_only_an_empty_objects_body() -> None:
    """``bytes=-0`` (the S3 door's ByteRange(empty_suffix=True)): of an empty
    object its empty body, as any suffix; of any other nothing, InvalidRange
    (S3's 416), never the whole object."""
    assert v.resolve_range(0, -1, 0, empty_suffix=True) == (0, -1)
    for size in (1, 100):
        with pytest.raises(errors.InvalidRange, match="last 0 bytes"):
            v.resolve_range(0, -1, size, empty_suffix=True)


@pytest.mark.parametrize(
    ("sizes", "size", "number", "resolved"),
    [
        ((5, 3, 2), 10, 1, (0, 4)),
        ((5, 3, 2), 10, 2, (5, 7)),
        ((5, 3, 2), 10, 3, (8, 9)),
        ((), 10, 1, (0, 9)),  # not uploaded in parts (or before sizes were kept): one part
        ((), 0, 1, (0, -1)),  # an empty object: an empty part
        ((7,), 7, 1, (0, 6)),
    ],
)
def test_resolve_part(
    sizes: tuple[int, ...], size: int, number: int, resolved: tuple[int, int]
) -> None:
    assert v.resolve_part(sizes, size, number) == resolved


def test_parts_that_cannot_be_answered() -> None:
    with pytest.raises(errors.InvalidPartNumber):
        v.resolve_part((5, 3), 8, 3)
    with pytest.raises(errors.InvalidPartNumber):
        v.resolve_part((), 8, 2)
    for bad in (0, -1, 10_001):
        with pytest.raises(errors.InvalidArgument, match="between 1 and 10000"):
            v.resolve_part((5, 3), 8, bad)
    with pytest.raises(errors.InvalidRequest, match="both Range header and partNumber"):
        v.resolve_part((5, 3), 8, 1, has_range=True)
    assert v.check_part_number(10_000) == 10_000
    assert errors.http_status(errors.InvalidPartNumber("x")) == 416


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(sizes=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8))
def test_parts_tile_the_object(sizes: list[int]) -> None:
    """Every part's range starts where the one before it ended, and they cover the object."""
    data = bytes(i % 251 for i in range(sum(sizes)))
    pieces = []
    for n in range(1, len(sizes) + 1):
        first, last = v.resolve_part(sizes, len(data), n)
        pieces.append(data[first : last + 1])
    assert [len(p) for p in pieces] == sizes and b"".join(pieces) == data


@pytest.mark.parametrize(
    ("start", "end", "size", "resolved"),
    [(0, 9, 100, (0, 9)), (0, 99, 100, (0, 99)), (99, 99, 100, (99, 99)), (0, 0, 1, (0, 0))],
)
def test_resolve_copy_range(start: int, end: int, size: int, resolved: tuple[int, int]) -> None:
    assert v.resolve_copy_range(start, end, size) == resolved


@pytest.mark.parametrize(
    ("start", "end", "size"),
    [
        (0, 100, 100),  # one past the end: refused, not clamped as a GET's
        (0, 99_999_999, 6 * 1024 * 1024),
        (100, 110, 100),  # the first byte past the end
        (0, 0, 0),  # any range of an empty source
        (5, 3, 100),
        (-5, -1, 100),
    ],
)
def test_copy_ranges_past_the_source_are_refused(start: int, end: int, size: int) -> None:
    with pytest.raises(errors.InvalidArgument, match=f"source object of size: {size}"):
        v.resolve_copy_range(start, end, size)


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(
    data=st.binary(min_size=1, max_size=300),
    a=st.integers(min_value=0, max_value=400),
    b=st.one_of(st.just(-1), st.integers(min_value=0, max_value=400)),
)
def test_resolve_range_agrees_with_slicing(data: bytes, a: int, b: int) -> None:
    """For every satisfiable range, ``data[first:last+1]`` is what HTTP says."""
    if (b >= 0 and b < a) or a >= len(data):
        with pytest.raises(errors.InvalidRange):
            v.resolve_range(a, b, len(data))
        return
    first, last = v.resolve_range(a, b, len(data))
    assert 0 <= first <= last < len(data)
    assert data[first : last + 1] == (data[a:] if b < 0 else data[a : b + 1])


@settings(deadline=None)  # CI machines stall; correctness is what counts
@given(data=st.binary(min_size=1, max_size=300), n=st.integers(min_value=1, max_value=400))
def test_suffix_ranges_agree_with_slicing(data: bytes, n: int) -> None:
    first, last = v.resolve_range(-n, -1, len(data))
    assert data[first : last + 1] == data[-n:]
    assert v.parse_range_header(f"bytes=-{n}") == (-n, -1)


# -- keys: NUL -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "trailing\x00"])
def test_key_must_not_contain_nul(key: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="NUL"):
        v.check_key(key)


# -- tags ------------------------------------------------------------------------


def test_tags_none_and_empty() -> None:
    assert v.normalize_tags(None) == {}
    assert v.normalize_tags({}) == {}


def test_tags_are_copied_not_changed() -> None:
    tags = {"Project": "Blue Sky", "cost-center": "a+b=c", "path": "x/y.z:1@2_3"}
    got = v.normalize_tags(tags)
    assert got == tags and got is not tags


def test_ten_tags_fit_eleven_do_not() -> None:
    ten = {f"k{i}": "v" for i in range(10)}
    assert v.normalize_tags(ten) == ten
    with pytest.raises(errors.InvalidTag, match="at most 10 tags"):
        v.normalize_tags({**ten, "k10": "v"})


def test_a_bucket_takes_fifty_tags_not_fifty_one() -> None:
    fifty = {f"k{i}": "v" for i in range(50)}
    assert v.normalize_bucket_tags(fifty) == fifty
    with pytest.raises(errors.InvalidTag, match="a bucket can have at most 50 tags"):
        v.normalize_bucket_tags({**fifty, "k50": "v"})


def test_bucket_tags_follow_the_object_tag_rules() -> None:
    v.normalize_bucket_tags({"k" * 128: "v" * 256, "empty": ""})
    for bad, says in (
        ({"k" * 129: "v"}, "1 to 128"),
        ({"": "v"}, "1 to 128"),
        ({"k": "v" * 257}, "longer than 256"),
        ({"aws:cost": "v"}, "aws: prefix"),
        ({"k": "semi;colon"}, "letters, digits"),
    ):
        with pytest.raises(errors.InvalidTag, match=says):
            v.normalize_bucket_tags(bad)


def test_tag_key_length() -> None:
    v.normalize_tags({"k" * 128: "v"})
    with pytest.raises(errors.InvalidTag, match="1 to 128"):
        v.normalize_tags({"k" * 129: "v"})
    with pytest.raises(errors.InvalidTag, match="1 to 128"):
        v.normalize_tags({"": "v"})


def test_tag_value_length() -> None:
    v.normalize_tags({"k": "v" * 256})
    v.normalize_tags({"k": ""})  # an empty value is allowed
    with pytest.raises(errors.InvalidTag, match="longer than 256"):
        v.normalize_tags({"k": "v" * 257})


def test_tag_lengths_count_characters_not_bytes() -> None:
    v.normalize_tags({"é" * 128: "é" * 256})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("a*b", "v"),
        ("k", "semi;colon"),
        ("q?", "v"),
        ("k", "<x>"),
        ("k", "a,b"),
        pytest.param("k", "a\nb", id="LF"),
        pytest.param("k", "a\r\nb", id="CRLF"),
        pytest.param("t\tab", "v", id="TAB"),
    ],
)
def test_tag_bad_characters(key: str, value: str) -> None:
    with pytest.raises(errors.InvalidTag, match="letters, digits"):
        v.normalize_tags({key: value})


@pytest.mark.parametrize("key", ["aws:x", "AWS:cost", "Aws:"])
def test_tag_aws_prefix_is_reserved(key: str) -> None:
    with pytest.raises(errors.InvalidTag, match="aws: prefix"):
        v.normalize_tags({key: "v"})


def test_tag_aws_elsewhere_in_the_key_is_fine() -> None:
    v.normalize_tags({"my-aws:thing": "aws:value"})


def test_tags_must_be_strings() -> None:
    with pytest.raises(errors.InvalidTag, match="strings"):
        v.normalize_tags({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(errors.InvalidTag, match="strings"):
        v.normalize_tags({2: "v"})  # type: ignore[dict-item]


# -- ACLs, storage classes, encryption -------------------------------------------


@pytest.mark.parametrize("acl", v.CANNED_ACLS)
def test_canned_acls(acl: str) -> None:
    assert v.check_acl(acl) == acl


def test_empty_acl_is_private() -> None:
    assert v.check_acl("") == "private"


@pytest.mark.parametrize("acl", ["Private", "public", "public-write", "full-control", " private"])
def test_bad_acls(acl: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="not a canned ACL"):
        v.check_acl(acl)


@pytest.mark.parametrize("cls", v.STORAGE_CLASSES)
def test_storage_classes(cls: str) -> None:
    assert v.check_storage_class(cls) == cls


def test_empty_storage_class_is_standard() -> None:
    assert v.check_storage_class("") == "STANDARD"


@pytest.mark.parametrize(
    "cls", ["standard", "COLD", "GLACIER_FLEXIBLE", "STANDARD ", "EXPRESS_ONEZONE", "OUTPOSTS"]
)
def test_bad_storage_classes(cls: str) -> None:
    with pytest.raises(errors.InvalidStorageClass, match="not one of"):
        v.check_storage_class(cls)


@pytest.mark.parametrize("sse", ["", *v.SSE_ALGORITHMS])
def test_sse_algorithms(sse: str) -> None:
    assert v.check_sse(sse) == sse


@pytest.mark.parametrize("sse", ["aes256", "AES128", "kms", "aws:kms:other", "SSE-C"])
def test_bad_sse(sse: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="server-side encryption"):
        v.check_sse(sse)


# -- versioning, copy directives ---------------------------------------------------


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_versioning_states(status: str) -> None:
    assert v.check_versioning_status(status) == status


@pytest.mark.parametrize("status", ["", "enabled", "Disabled", "Unversioned", "Off"])
def test_bad_versioning_states(status: str) -> None:
    with pytest.raises(errors.IllegalVersioningConfigurationException, match="Enabled or"):
        v.check_versioning_status(status)


@pytest.mark.parametrize(
    ("given", "directive"),
    [("", "COPY"), ("COPY", "COPY"), ("replace", "REPLACE"), ("Copy", "COPY")],
)
def test_directives(given: str, directive: str) -> None:
    assert v.check_directive("metadata directive", given) == directive


@pytest.mark.parametrize("given", ["MOVE", "KEEP", "REPLACE ", "C0PY"])
def test_bad_directives(given: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="tagging directive must be COPY or REPLACE"):
        v.check_directive("tagging directive", given)


@pytest.mark.parametrize(
    ("given", "hex_digest"),
    [
        ("", ""),
        ("900150983cd24fb0d6963f7d28e17f72", "900150983cd24fb0d6963f7d28e17f72"),
        ("900150983CD24FB0D6963F7D28E17F72", "900150983cd24fb0d6963f7d28e17f72"),
        ("kAFQmDzST7DWlj99KOF/cg==", "900150983cd24fb0d6963f7d28e17f72"),  # S3's base64 form
    ],
)
def test_content_md5_forms(given: str, hex_digest: str) -> None:
    assert v.check_content_md5(given) == hex_digest


@pytest.mark.parametrize(
    "bad", ["zz", "0" * 31, "0" * 33, "g" * 32, "kAFQmDzST7DWlj99KOF/cg", "x" * 500]
)
def test_content_md5_that_is_no_md5_is_invalid_digest(bad: str) -> None:
    with pytest.raises(errors.InvalidDigest, match="not an MD5"):
        v.check_content_md5(bad)


# -- DeleteObjects ------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 500, v.MAX_DELETE_KEYS])
def test_delete_count_within_limits(n: int) -> None:
    v.check_delete_count(n)


@pytest.mark.parametrize("n", [0, v.MAX_DELETE_KEYS + 1])
def test_delete_count_refused_outside_limits(n: int) -> None:
    with pytest.raises(errors.InvalidArgument, match="1 to 1000 keys"):
        v.check_delete_count(n)


def test_stored_headers_are_normalized() -> None:
    assert v.normalize_headers(None) == {}
    assert v.normalize_headers(
        {"Cache-Control": " no-cache ", "EXPIRES": "0", "content-language": ""}
    ) == {
        "cache-control": "no-cache",
        "expires": "0",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-meta-a": "1"},  # user metadata has its own argument
        {"content-type": "text/plain"},  # so has the content type
        {"cache-control": "a\r\nx-injected: 1"},
        {"content-disposition": 'attachment; filename="ü.txt"'},  # not ASCII
        {"cache-control": "x" * (v.MAX_STORED_HEADER + 1)},
        {"cache-control": "a", "Cache-Control": "b"},
    ],
)
def test_bad_stored_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        v.normalize_headers(headers)


@pytest.mark.parametrize("constraint", ["", "us-east-1"])
def test_location_constraint_of_the_cluster(constraint: str) -> None:
    v.check_location_constraint(constraint, "us-east-1")


@pytest.mark.parametrize("constraint", ["eu-west-1", "EU", "us-west-2"])
def test_location_constraint_of_another_region(constraint: str) -> None:
    with pytest.raises(errors.IllegalLocationConstraintException, match=constraint):
        v.check_location_constraint(constraint, "us-east-1")


@pytest.mark.parametrize("constraint", ["mars-north-1", "US", "eu-west-1 "])
def test_location_constraint_that_is_no_region(constraint: str) -> None:
    with pytest.raises(errors.InvalidLocationConstraint):
        v.check_location_constraint(constraint, "us-east-1")
