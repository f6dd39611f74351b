"""S3's XML, both ways: the documents the S3 HTTP API answers with (as S3
writes them: the 2006-03-01 namespace, quoted ETags, ISO 8601 times with
milliseconds) and the few it reads (DeleteObjects, CompleteMultipartUpload,
versioning, object and bucket tagging, encryption, replication and CORS
configurations).

Pure functions of domain dataclasses (tristore.model), so that they are tested
without a server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree import ElementTree as ET

from tristore import checksums, cors, errors, replication, validation
from tristore.errors import MalformedXML
from tristore.model import (
    BucketInfo,
    CompletedPart,
    ListPage,
    MultipartUpload,
    ObjectInfo,
    Part,
    PartPage,
    UploadPage,
    VersionPage,
)

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
CONTENT_TYPE = "application/xml"
_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: A request document larger than this is refused (DeleteObjects of 1,000 long keys fits).
MAX_REQUEST_XML = 2 * 1024 * 1024
#: A CORSConfiguration larger than this is refused (S3's limit).
MAX_CORS_XML = 64 * 1024


def iso(t: dt.datetime) -> str:
    """S3's timestamp form: ``2009-10-12T17:50:30.000Z``."""
    t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def quote_etag(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


#: Control characters, written as character references: a parser turns a raw
#: CR (or CR LF) into LF, so a key with one would come back another key, and
#: the others are not XML 1.0 text at all. S3 writes CR and LF so too; TAB is
#: text, and kept. (UTF-8 never puts these bytes inside a longer character.)
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f]")
#: The same characters in text (an error's Resource, percent-encoded).
_CONTROL_TEXT = re.compile(_CONTROL.pattern.decode())


def _reference(m: re.Match[bytes]) -> bytes:
    return b"&#%d;" % m.group()[0]


def _doc(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return _DECL + _CONTROL.sub(_reference, body)


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=NS)


def _add(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text if isinstance(text, str) else _text(text)
    return el


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return iso(v)
    return str(v)


def _owner(parent: ET.Element, owner: str, tag: str = "Owner") -> None:
    el = _add(parent, tag)
    _add(el, "ID", owner)
    _add(el, "DisplayName", owner)


class Encoder:
    """Keys and prefixes as the listing asked for them: as they are, or
    URL-encoded (``encoding-type=url``; spaces as %20, ``/`` kept)."""

    def __init__(self, encoding_type: str) -> None:
        self.url = encoding_type == "url"

    def __call__(self, s: str) -> str:
        return quote(s, safe="/") if self.url else s


def error(
    code: str,
    message: str,
    resource: str,
    request_id: str,
    extra: dict[str, object] | None = None,
    host_id: str = "",
) -> bytes:
    """S3's error document; ``extra``: elements some codes carry (an
    InvalidRange's ``ActualObjectSize``); ``host_id``: the node's
    (x-amz-id-2)."""
    root = ET.Element("Error")
    _add(root, "Code", code)
    _add(root, "Message", message)
    for tag, value in (extra or {}).items():
        _add(root, tag, value)
    # A path: its control characters percent-encoded, not written as the
    # character references XML 1.0 does not allow (an SDK's parser then fails
    # and reports the HTTP status, not the code).
    _add(root, "Resource", _CONTROL_TEXT.sub(lambda m: quote(m.group()), resource))
    _add(root, "RequestId", request_id)
    if host_id:
        _add(root, "HostId", host_id)
    return _doc(root)


def list_buckets(
    buckets: Sequence[BucketInfo],
    owner: str,
    region: str = "",
    prefix: str | None = None,
    next_token: str = "",
) -> bytes:
    """ListAllMyBucketsResult: the page's buckets (each with its region when
    given), the next page's ContinuationToken when there is one, and the
    Prefix asked for, echoed when given (S3's since 2024)."""
    root = _root("ListAllMyBucketsResult")
    _owner(root, owner)
    el = _add(root, "Buckets")
    for b in buckets:
        one = _add(el, "Bucket")
        _add(one, "Name", b.name)
        _add(one, "CreationDate", b.created)
        if region:
            _add(one, "BucketRegion", region)
    if next_token:
        _add(root, "ContinuationToken", next_token)
    if prefix is not None:
        _add(root, "Prefix", prefix)
    return _doc(root)


def location(region: str) -> bytes:
    root = _root("LocationConstraint")
    # us-east-1 is written as an empty constraint, as S3 does.
    if region != "us-east-1":
        root.text = region
    return _doc(root)


def empty_config(tag: str) -> bytes:
    """A configuration document with nothing configured (``<BucketLoggingStatus/>``, ...)."""
    return _doc(_root(tag))


def request_payment(payer: str) -> bytes:
    root = _root("RequestPaymentConfiguration")
    _add(root, "Payer", payer)
    return _doc(root)


def versioning(status: str) -> bytes:
    root = _root("VersioningConfiguration")
    if status:
        _add(root, "Status", status)
    return _doc(root)


def tagging(tags: dict[str, str]) -> bytes:
    root = _root("Tagging")
    ts = _add(root, "TagSet")
    for k, v in sorted(tags.items()):
        t = _add(ts, "Tag")
        _add(t, "Key", k)
        _add(t, "Value", v)
    return _doc(root)


#: What GetObjectAttributes may be asked for (x-amz-object-attributes), in
#: the order its answer gives them.
OBJECT_ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")


def parse_object_attributes(header: str | None) -> frozenset[str]:
    """x-amz-object-attributes: a comma-separated list of
    :data:`OBJECT_ATTRIBUTES` (as S3 names them); InvalidArgument when it is
    missing or names another."""
    names = {n.strip() for n in (header or "").split(",") if n.strip()}
    if not names:
        raise errors.InvalidArgument(
            "x-amz-object-attributes, the attributes to answer, is missing or empty; give "
            f"some of {', '.join(OBJECT_ATTRIBUTES)}, comma-separated"
        )
    unknown = sorted(names - set(OBJECT_ATTRIBUTES))
    if unknown:
        raise errors.InvalidArgument(
            f"Invalid attribute name specified: {', '.join(unknown)} (x-amz-object-attributes "
            f"takes {', '.join(OBJECT_ATTRIBUTES)})"
        )
    return frozenset(names)


def object_attributes(info: ObjectInfo, wanted: frozenset[str]) -> bytes:
    """GetObjectAttributesResponse: those of ``wanted`` the object has. The
    ETag unquoted, as S3 answers it here; ObjectParts only for an object
    uploaded in parts, as its count (S3 lists the parts themselves only for
    an object with a checksum of each part, which tristore does not keep)."""
    root = _root("GetObjectAttributesResponse")
    if "ETag" in wanted:
        _add(root, "ETag", info.etag)
    if "Checksum" in wanted and info.checksum_algorithm and info.checksum:
        c = _add(root, "Checksum")
        _add(c, f"Checksum{info.checksum_algorithm.upper()}", info.checksum)
        if info.checksum_type:
            _add(c, "ChecksumType", info.checksum_type)
    if "ObjectParts" in wanted and info.part_sizes:
        _add(_add(root, "ObjectParts"), "PartsCount", len(info.part_sizes))
    if "StorageClass" in wanted:
        _add(root, "StorageClass", info.storage_class or "STANDARD")
    if "ObjectSize" in wanted:
        _add(root, "ObjectSize", info.size)
    return _doc(root)


#: The namespace of a Grantee's ``xsi:type``.
XSI = "http://www.w3.org/2001/XMLSchema-instance"


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
#: The canned ACLs whose grants differ, the one each grant set is read as
#: (bucket-owner-read and the like grant what ``private`` does here: the
#: bucket's owner owns every object in it).
DISTINCT_CANNED = ("private", "public-read", "public-read-write", "authenticated-read")


def canned_grants(owner: str, canned: str) -> list[Grant]:
    """The grants of a canned ACL: the owner's FULL_CONTROL, and what it adds."""
    out = [Grant("CanonicalUser", owner, "FULL_CONTROL")]
    if canned in ("public-read", "public-read-write"):
        out.append(Grant("Group", ALL_USERS, "READ"))
    if canned == "public-read-write":
        out.append(Grant("Group", ALL_USERS, "WRITE"))
    if canned == "authenticated-read":
        out.append(Grant("Group", AUTHENTICATED_USERS, "READ"))
    return out


def canned_of(grants: Sequence[Grant], owner: str) -> str | None:
    """The canned ACL that makes exactly ``grants`` (in any order), or None."""
    sent = set(grants)
    for canned in DISTINCT_CANNED:
        if set(canned_grants(owner, canned)) == sent:
            return canned
    return None


def acl(owner: str, canned: str) -> bytes:
    """An AccessControlPolicy: the grants of a canned ACL (GetObjectAcl's;
    GetBucketAcl's is always ``private``'s)."""
    root = _root("AccessControlPolicy")
    _owner(root, owner)
    grants = _add(root, "AccessControlList")
    for grant in canned_grants(owner, canned):
        g = _add(grants, "Grant")
        gr = ET.SubElement(g, "Grantee", {"xmlns:xsi": XSI, "xsi:type": grant.kind})
        if grant.kind == "CanonicalUser":
            _add(gr, "ID", grant.who)
            _add(gr, "DisplayName", grant.who)
        else:
            _add(gr, "URI", grant.who)
        _add(g, "Permission", grant.permission)
    return _doc(root)


@dataclass(frozen=True)
class ListArgs:
    """What a ListObjects request asked for, echoed in its answer."""

    bucket: str
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = 1000
    encoding_type: str = ""
    #: v2
    continuation_token: str = ""
    start_after: str = ""
    #: v1
    marker: str = ""
    #: Each entry's Owner (ID and DisplayName), or None to leave it out (a
    #: ListObjectVersions entry then shows its version's own).
    owner: str | None = None


def _contents(root: ET.Element, page: ListPage, enc: Encoder, owner: str | None) -> None:
    """Keys (with their Owner unless ``owner`` is None) and common prefixes."""
    for e in page.contents:
        c = _add(root, "Contents")
        _add(c, "Key", enc(e.key))
        _add(c, "LastModified", e.last_modified)
        _add(c, "ETag", quote_etag(e.etag))
        _add(c, "Size", e.size)
        _add(c, "StorageClass", e.storage_class or "STANDARD")
        _checksum_algorithm(c, e.checksum_algorithm, e.checksum_type)
        if owner is not None:
            _owner(c, owner)
    for p in page.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", enc(p))


def _checksum_algorithm(el: ET.Element, algorithm: str, kind: str) -> None:
    """A listed object's ``<ChecksumAlgorithm>`` and ``<ChecksumType>``, as S3
    lists them (no value: HeadObject and GetObject give it)."""
    if algorithm:
        _add(el, "ChecksumAlgorithm", algorithm.upper())
        if kind:
            _add(el, "ChecksumType", kind)


def _list_head(root: ET.Element, a: ListArgs, enc: Encoder) -> None:
    _add(root, "Name", a.bucket)
    _add(root, "Prefix", enc(a.prefix))


def list_objects_v2(page: ListPage, a: ListArgs) -> bytes:
    enc = Encoder(a.encoding_type)
    root = _root("ListBucketResult")
    _list_head(root, a, enc)
    if a.continuation_token:
        _add(root, "ContinuationToken", a.continuation_token)
    if page.next_continuation_token and page.is_truncated:
        _add(root, "NextContinuationToken", page.next_continuation_token)
    if a.start_after:
        _add(root, "StartAfter", enc(a.start_after))
    _add(root, "KeyCount", len(page.contents) + len(page.common_prefixes))
    _add(root, "MaxKeys", a.max_keys)
    if a.delimiter:
        _add(root, "Delimiter", enc(a.delimiter))
    if a.encoding_type:
        _add(root, "EncodingType", a.encoding_type)
    _add(root, "IsTruncated", page.is_truncated)
    _contents(root, page, enc, a.owner)
    return _doc(root)


def next_marker(page: ListPage) -> str:
    """ListObjects v1's NextMarker: the last key or common prefix of the page."""
    last = [*(e.key for e in page.contents[-1:]), *page.common_prefixes[-1:]]
    return max(last) if last else ""


def list_objects_v1(page: ListPage, a: ListArgs) -> bytes:
    enc = Encoder(a.encoding_type)
    root = _root("ListBucketResult")
    _list_head(root, a, enc)
    _add(root, "Marker", enc(a.marker))
    if page.is_truncated and a.delimiter:
        _add(root, "NextMarker", enc(next_marker(page)))
    _add(root, "MaxKeys", a.max_keys)
    if a.delimiter:
        _add(root, "Delimiter", enc(a.delimiter))
    if a.encoding_type:
        _add(root, "EncodingType", a.encoding_type)
    _add(root, "IsTruncated", page.is_truncated)
    _contents(root, page, enc, a.owner)
    return _doc(root)


def list_versions(
    page: VersionPage,
    a: ListArgs,
    key_marker: str,
    version_id_marker: str,
) -> bytes:
    enc = Encoder(a.encoding_type)
    root = _root("ListVersionsResult")
    _list_head(root, a, enc)
    _add(root, "KeyMarker", enc(key_marker))
    _add(root, "VersionIdMarker", version_id_marker)
    if page.is_truncated:
        _add(root, "NextKeyMarker", enc(page.next_key_marker or ""))
        _add(root, "NextVersionIdMarker", page.next_version_id_marker or "")
    _add(root, "MaxKeys", a.max_keys)
    if a.delimiter:
        _add(root, "Delimiter", enc(a.delimiter))
    if a.encoding_type:
        _add(root, "EncodingType", a.encoding_type)
    _add(root, "IsTruncated", page.is_truncated)
    for v in page.versions:
        el = _add(root, "DeleteMarker" if v.delete_marker else "Version")
        _add(el, "Key", enc(v.key))
        _add(el, "VersionId", v.version_id or "null")
        _add(el, "IsLatest", v.is_latest)
        _add(el, "LastModified", v.last_modified)
        if not v.delete_marker:
            _add(el, "ETag", quote_etag(v.etag))
            _add(el, "Size", v.size)
            _add(el, "StorageClass", v.storage_class or "STANDARD")
            _checksum_algorithm(el, v.checksum_algorithm, v.checksum_type)
        _owner(el, v.owner if a.owner is None else a.owner)
    for p in page.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", enc(p))
    return _doc(root)


def _checksum(root: ET.Element, algorithm: str, value: str, kind: str = "") -> None:
    """S3's ``<ChecksumCRC32>`` (or CRC32C, CRC64NVME, SHA1, SHA256) and ``<ChecksumType>``."""
    if algorithm and value:
        _add(root, f"Checksum{algorithm.upper()}", value)
        if kind:
            _add(root, "ChecksumType", kind)


def copy_result(info: ObjectInfo) -> bytes:
    root = _root("CopyObjectResult")
    _add(root, "LastModified", info.last_modified)
    _add(root, "ETag", quote_etag(info.etag))
    _checksum(root, info.checksum_algorithm, info.checksum, info.checksum_type)
    return _doc(root)


def copy_part_result(part: Part) -> bytes:
    root = _root("CopyPartResult")
    _add(root, "LastModified", part.last_modified)
    _add(root, "ETag", quote_etag(part.etag))
    _checksum(root, part.checksum_algorithm, part.checksum)
    return _doc(root)


def encryption(algorithm: str) -> bytes:
    root = _root("ServerSideEncryptionConfiguration")
    rule = _add(_add(root, "Rule"), "ApplyServerSideEncryptionByDefault")
    _add(rule, "SSEAlgorithm", algorithm)
    return _doc(root)


def initiate_multipart(u: MultipartUpload) -> bytes:
    root = _root("InitiateMultipartUploadResult")
    _add(root, "Bucket", u.bucket)
    _add(root, "Key", u.key)
    _add(root, "UploadId", u.upload_id)
    return _doc(root)


def complete_multipart(info: ObjectInfo, location_url: str) -> bytes:
    root = _root("CompleteMultipartUploadResult")
    _add(root, "Location", location_url)
    _add(root, "Bucket", info.bucket)
    _add(root, "Key", info.key)
    _add(root, "ETag", quote_etag(info.etag))
    _checksum(root, info.checksum_algorithm, info.checksum, info.checksum_type)
    return _doc(root)


def post_response(location_url: str, bucket: str, key: str, etag: str) -> bytes:
    """POST Object's answer to ``success_action_status=201`` (S3 writes it
    without the namespace)."""
    root = ET.Element("PostResponse")
    _add(root, "Location", location_url)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "ETag", quote_etag(etag))
    return _doc(root)


def list_parts(
    page: PartPage,
    bucket: str,
    key: str,
    upload_id: str,
    marker: int,
    max_parts: int,
    owner: str,
) -> bytes:
    """ListPartsResult; its Initiator and Owner are ``owner`` (the bucket's:
    BucketOwnerEnforced), as each upload's in :func:`list_uploads`."""
    root = _root("ListPartsResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    _owner(root, owner, "Initiator")
    _owner(root, owner)
    _add(root, "StorageClass", page.storage_class or "STANDARD")
    _add(root, "PartNumberMarker", marker)
    if page.next_part_number_marker is not None:
        _add(root, "NextPartNumberMarker", page.next_part_number_marker)
    _add(root, "MaxParts", max_parts)
    _add(root, "IsTruncated", page.is_truncated)
    for p in page.parts:
        el = _add(root, "Part")
        _add(el, "PartNumber", p.part_number)
        _add(el, "LastModified", p.last_modified)
        _add(el, "ETag", quote_etag(p.etag))
        _add(el, "Size", p.size)
        _checksum(el, p.checksum_algorithm, p.checksum)
    if page.checksum_algorithm:
        _add(root, "ChecksumAlgorithm", page.checksum_algorithm.upper())
        _add(root, "ChecksumType", page.checksum_type)
    return _doc(root)


def list_uploads(
    page: UploadPage,
    a: ListArgs,
    key_marker: str,
    upload_id_marker: str,
) -> bytes:
    """ListMultipartUploadsResult; each upload's Owner and Initiator is
    ``a.owner`` when given (the bucket's: BucketOwnerEnforced), else the
    upload's. With ``encoding-type=url``, keys, prefixes, markers and the
    delimiter are URL-encoded, as S3 encodes them."""
    enc = Encoder(a.encoding_type)
    root = _root("ListMultipartUploadsResult")
    _add(root, "Bucket", a.bucket)
    _add(root, "KeyMarker", enc(key_marker))
    _add(root, "UploadIdMarker", upload_id_marker)
    if page.is_truncated:
        _add(root, "NextKeyMarker", enc(page.next_key_marker or ""))
        _add(root, "NextUploadIdMarker", page.next_upload_id_marker or "")
    _add(root, "Prefix", enc(a.prefix))
    if a.delimiter:
        _add(root, "Delimiter", enc(a.delimiter))
    _add(root, "MaxUploads", a.max_keys)
    if a.encoding_type:
        _add(root, "EncodingType", a.encoding_type)
    _add(root, "IsTruncated", page.is_truncated)
    for u in page.uploads:
        el = _add(root, "Upload")
        _add(el, "Key", enc(u.key))
        _add(el, "UploadId", u.upload_id)
        _owner(el, u.owner if a.owner is None else a.owner, "Initiator")
        _owner(el, u.owner if a.owner is None else a.owner)
        _add(el, "StorageClass", u.storage_class or "STANDARD")
        _add(el, "Initiated", u.initiated)
    for p in page.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", enc(p))
    return _doc(root)


@dataclass(frozen=True)
class Deleted:
    key: str
    version_id: str = ""
    delete_marker: bool = False
    delete_marker_version_id: str = ""


@dataclass(frozen=True)
class DeleteError:
    key: str
    version_id: str
    code: str
    message: str


def delete_result(items: Iterable[Deleted | DeleteError], quiet: bool) -> bytes:
    root = _root("DeleteResult")
    for it in items:
        if isinstance(it, DeleteError):
            el = _add(root, "Error")
            _add(el, "Key", it.key)
            if it.version_id:
                _add(el, "VersionId", it.version_id)
            _add(el, "Code", it.code)
            _add(el, "Message", it.message)
        elif not quiet:
            el = _add(root, "Deleted")
            _add(el, "Key", it.key)
            if it.version_id:
                _add(el, "VersionId", it.version_id)
            if it.delete_marker:
                _add(el, "DeleteMarker", True)
                _add(el, "DeleteMarkerVersionId", it.delete_marker_version_id)
    return _doc(root)


# -- parsing ---------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse(body: bytes, root_tag: str) -> ET.Element:
    if not body.strip():
        raise MalformedXML(f"the request body is empty; expected a <{root_tag}> document")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXML("document type declarations are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise MalformedXML(f"the XML you provided was not well-formed: {e}") from None
    if _local(root.tag) != root_tag:
        raise MalformedXML(f"expected a <{root_tag}> document, not <{_local(root.tag)}>")
    return root


def _children(el: ET.Element, tag: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == tag]


def _child_text(el: ET.Element, tag: str) -> str | None:
    found = _children(el, tag)
    return (found[0].text or "") if found else None


def parse_delete(body: bytes) -> tuple[list[tuple[str, str, str]], bool]:
    """A DeleteObjects document: the (key, version id, ETag to match) of each
    object and Quiet."""
    root = _parse(body, "Delete")
    objects = []
    for o in _children(root, "Object"):
        key = _child_text(o, "Key")
        if key is None:
            raise MalformedXML("an <Object> of <Delete> has no <Key>")
        unoffered = [c for c in ("LastModifiedTime", "Size") if _child_text(o, c)]
        if unoffered:
            # Ignored, the object would be deleted whatever it holds now.
            raise errors.NotImplemented(
                f"conditional deletes by <{'>, <'.join(unoffered)}> (of {key!r}) are not "
                "supported (S3 takes them in directory buckets only): nothing was deleted; "
                "use <ETag>"
            )
        version = _child_text(o, "VersionId")
        if version is not None and not version.strip():
            raise errors.InvalidArgument(
                f"the <VersionId> of {key!r} is empty: a version id cannot be the empty string "
                "(leave the element out to delete the current object)"
            )
        objects.append((key, version or "", (_child_text(o, "ETag") or "").strip()))
    if not objects:
        raise MalformedXML("<Delete> lists no <Object>")
    if len(objects) > 1000:
        raise MalformedXML(f"<Delete> lists {len(objects)} objects; at most 1000 a request")
    quiet = (_child_text(root, "Quiet") or "").strip().lower() == "true"
    return objects, quiet


def parse_complete(body: bytes) -> list[CompletedPart]:
    """A CompleteMultipartUpload document: each part's number, ETag (without
    quotes) and the checksum it lists (``<ChecksumCRC32>`` etc.), if any."""
    root = _parse(body, "CompleteMultipartUpload")
    parts = []
    for p in _children(root, "Part"):
        num, etag = _child_text(p, "PartNumber"), _child_text(p, "ETag")
        if num is None or etag is None:
            raise MalformedXML("a <Part> needs <PartNumber> and <ETag>")
        try:
            n = int(num)
        except ValueError:
            raise MalformedXML(f"<PartNumber> {num!r} is not a number") from None
        sums = [
            (_local(c.tag)[len("Checksum") :].lower(), (c.text or "").strip())
            for c in p
            if _local(c.tag).startswith("Checksum")
        ]
        algorithm, value = sums[0] if sums else ("", "")
        if len(sums) > 1:
            raise MalformedXML(f"<Part> {n} lists {len(sums)} checksums; give at most one")
        if algorithm:
            algorithm = checksums.check_algorithm(algorithm)
            if not value:
                raise MalformedXML(f"<Checksum{algorithm.upper()}> of <Part> {n} is empty")
        parts.append(CompletedPart(n, etag.strip().strip('"'), algorithm, value))
    return parts


def parse_create_bucket(body: bytes) -> str:
    """A CreateBucket body: none, or a CreateBucketConfiguration; its
    LocationConstraint ("" when it names none). Anything else is MalformedXML."""
    if not body.strip():
        return ""
    root = _parse(body, "CreateBucketConfiguration")
    return (_child_text(root, "LocationConstraint") or "").strip()


@dataclass(frozen=True)
class Grant:
    """One Grant of an AccessControlPolicy a request sent."""

    #: The Grantee's xsi:type: CanonicalUser, Group or AmazonCustomerByEmail.
    kind: str
    #: Its ID, URI or EmailAddress (whichever it names).
    who: str
    permission: str

    def __str__(self) -> str:
        return f"{self.permission} to {self.kind} {self.who!r}"


def parse_acl(body: bytes) -> list[Grant]:
    """An AccessControlPolicy document's grants (PutBucketAcl's and
    PutObjectAcl's body)."""
    root = _parse(body, "AccessControlPolicy")
    out = []
    for acl_list in _children(root, "AccessControlList"):
        for g in _children(acl_list, "Grant"):
            grantee = _children(g, "Grantee")
            permission = (_child_text(g, "Permission") or "").strip()
            if not grantee or not permission:
                raise MalformedXML("a <Grant> needs a <Grantee> and a <Permission>")
            kind = grantee[0].get(f"{{{XSI}}}type", "")
            out.append(Grant(kind, _grantee(grantee[0]), permission))
    return out


def _grantee(el: ET.Element) -> str:
    for tag in ("ID", "URI", "EmailAddress"):
        text = _child_text(el, tag)
        if text is not None:
            return text.strip()
    return ""


def parse_versioning(body: bytes) -> str:
    """A VersioningConfiguration's Status. MFA delete is not offered: asked
    for, it is refused rather than taken and not enforced."""
    root = _parse(body, "VersioningConfiguration")
    if (_child_text(root, "MfaDelete") or "").strip() == "Enabled":
        raise errors.NotImplemented(
            "MFA delete is not supported: versioning was left as it was; set the "
            "configuration without <MfaDelete>Enabled</MfaDelete>"
        )
    return (_child_text(root, "Status") or "").strip()


def parse_encryption(body: bytes) -> str:
    """A ServerSideEncryptionConfiguration: its one rule's SSEAlgorithm."""
    root = _parse(body, "ServerSideEncryptionConfiguration")
    found = [
        _child_text(d, "SSEAlgorithm") or ""
        for r in _children(root, "Rule")
        for d in _children(r, "ApplyServerSideEncryptionByDefault")
    ]
    if len(found) != 1:
        raise MalformedXML("a ServerSideEncryptionConfiguration takes exactly one default rule")
    return found[0].strip()


#: The role S3's ReplicationConfiguration names (replicators sign with their own keys).
REPLICATION_ROLE = "arn:aws:iam:::role/tristore-replicator"


def destination_arn(d: replication.Destination) -> str:
    """A destination bucket as an ARN whose region names its cluster (a
    ``[[remotes]]`` name): ``arn:aws:s3:CLUSTER::BUCKET``."""
    return f"arn:aws:s3:{d.cluster}::{d.bucket}"


def _destination(arn: str) -> tuple[str, str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "s3"] or not parts[3] or not parts[5]:
        raise MalformedXML(
            f"destination bucket {arn!r} is not arn:aws:s3:CLUSTER::BUCKET "
            "(CLUSTER: a remote cluster of [[remotes]])"
        )
    return parts[3], parts[5]


def replication_config(rules: Sequence[replication.Rule]) -> bytes:
    root = _root("ReplicationConfiguration")
    _add(root, "Role", REPLICATION_ROLE)
    for r in rules:
        if len(r.destinations) != 1:
            raise errors.NotImplemented(
                f"rule {r.id!r} has {len(r.destinations)} destinations, which S3's XML cannot "
                "say (one a rule); read it with `tristore replication get`"
            )
        d = r.destinations[0]
        el = _add(root, "Rule")
        _add(el, "ID", r.id)
        _add(el, "Priority", r.priority)
        _add(el, "Status", "Enabled" if r.enabled else "Disabled")
        f = _add(el, "Filter")
        if r.tags:
            both = _add(f, "And")
            if r.prefix:
                _add(both, "Prefix", r.prefix)
            for k, v in sorted(r.tags.items()):
                tag = _add(both, "Tag")
                _add(tag, "Key", k)
                _add(tag, "Value", v)
        else:
            _add(f, "Prefix", r.prefix)
        dm = _add(el, "DeleteMarkerReplication")
        _add(dm, "Status", "Enabled" if r.delete_markers else "Disabled")
        ssc = _add(_add(el, "SourceSelectionCriteria"), "ReplicaModifications")
        _add(ssc, "Status", "Enabled" if r.replica_modifications else "Disabled")
        dest = _add(el, "Destination")
        _add(dest, "Bucket", destination_arn(d))
        if d.owner:
            _add(dest, "Account", d.owner)
            _add(_add(dest, "AccessControlTranslation"), "Owner", "Destination")
        if d.storage_class:
            _add(dest, "StorageClass", d.storage_class)
    return _doc(root)


def _enabled(el: ET.Element, *path: str) -> bool:
    for tag in path:
        found = _children(el, tag)
        if not found:
            return False
        el = found[0]
    status = (_child_text(el, "Status") or "").strip()
    if status not in ("Enabled", "Disabled"):
        raise MalformedXML(f"<{path[-1]}><Status> must be Enabled or Disabled, not {status!r}")
    return status == "Enabled"


def _filter(rule: ET.Element) -> tuple[str, dict[str, str]]:
    """A rule's prefix and tags: <Filter> (Prefix, Tag or And) or the older <Prefix>."""
    filters = _children(rule, "Filter")
    if not filters:
        return (_child_text(rule, "Prefix") or ""), {}
    f = filters[0]
    ands = _children(f, "And")
    scope = ands[0] if ands else f
    tags = {}
    for t in _children(scope, "Tag"):
        k = _child_text(t, "Key")
        if k is None:
            raise MalformedXML("a <Tag> has no <Key>")
        if k in tags:
            raise errors.InvalidRequest(f"Duplicate Tag Keys are not allowed ({k!r})")
        tags[k] = _child_text(t, "Value") or ""
    return (_child_text(scope, "Prefix") or ""), tags


#: Rule elements tristore does not act on, and what to use instead: given
#: Enabled, refused, rather than accepted and dropped.
_NOT_OFFERED = {
    ("ExistingObjectReplication",): "use `tristore replication backfill` for existing objects",
    ("Destination", "ReplicationTime"): "the lag is in `tristore replication status` and metrics",
    ("Destination", "Metrics"): "the replicators' metrics are always on",
    ("SourceSelectionCriteria", "SseKmsEncryptedObjects"): "tristore has no SSE-KMS",
}


def _refuse_not_offered(rule: ET.Element) -> None:
    for path, instead in _NOT_OFFERED.items():
        if _enabled(rule, *path):
            raise errors.NotImplemented(f"<{path[-1]}> Enabled is not supported: {instead}")


def parse_replication(body: bytes) -> list[replication.Rule]:
    """A ReplicationConfiguration as tristore's rules (checked by the bucket's code)."""
    root = _parse(body, "ReplicationConfiguration")
    rules = []
    for i, el in enumerate(_children(root, "Rule")):
        dests = _children(el, "Destination")
        if len(dests) != 1:
            raise MalformedXML("a <Rule> has exactly one <Destination>")
        cluster, bucket = _destination(_child_text(dests[0], "Bucket") or "")
        prefix, tags = _filter(el)
        _refuse_not_offered(el)
        try:
            priority = int(_child_text(el, "Priority") or "0")
        except ValueError:
            raise MalformedXML("<Priority> is not a number") from None
        status = (_child_text(el, "Status") or "").strip()
        if status not in ("Enabled", "Disabled"):
            raise MalformedXML(f"<Status> must be Enabled or Disabled, not {status!r}")
        dest = replication.Destination(
            cluster,
            bucket,
            (_child_text(dests[0], "StorageClass") or "").strip(),
            (_child_text(dests[0], "Account") or "").strip(),
        )
        rules.append(
            replication.Rule(
                id=(_child_text(el, "ID") or f"rule-{i + 1}").strip(),
                destinations=(dest,),
                priority=priority,
                enabled=status == "Enabled",
                prefix=prefix,
                tags=tags,
                delete_markers=_enabled(el, "DeleteMarkerReplication"),
                replica_modifications=_enabled(
                    el, "SourceSelectionCriteria", "ReplicaModifications"
                ),
            )
        )
    if not rules:
        raise MalformedXML("<ReplicationConfiguration> has no <Rule>")
    return rules


def parse_tagging(body: bytes) -> dict[str, str]:
    """A Tagging document's tags (a key given twice: InvalidTag, as S3)."""
    return _tags(_parse(body, "Tagging"))


def parse_bucket_tagging(body: bytes) -> dict[str, str]:
    """PutBucketTagging's Tagging document: as :func:`parse_tagging`, and its
    TagSet is required (S3's schema): a ``<Tagging/>`` is MalformedXML rather
    than a way to remove the tags by accident."""
    root = _parse(body, "Tagging")
    if not _children(root, "TagSet"):
        raise MalformedXML("<Tagging> has no <TagSet>")
    return _tags(root)


def _tags(root: ET.Element) -> dict[str, str]:
    pairs: list[tuple[str, str]] = []
    for ts in _children(root, "TagSet"):
        for t in _children(ts, "Tag"):
            k, v = _child_text(t, "Key"), _child_text(t, "Value")
            if k is None:
                raise MalformedXML("a <Tag> has no <Key>")
            pairs.append((k, v or ""))
    return validation.tags_from_pairs(pairs)


# -- CORS (tristore/cors.py) ---------------------------------------------------------

#: A CORSRule's elements: (tag, whether it may repeat).
_CORS_FIELDS = {
    "ID": False,
    "AllowedOrigin": True,
    "AllowedMethod": True,
    "AllowedHeader": True,
    "ExposeHeader": True,
    "MaxAgeSeconds": False,
}


def cors_config(rules: Sequence[cors.Rule]) -> bytes:
    root = _root("CORSConfiguration")
    for r in rules:
        el = _add(root, "CORSRule")
        if r.id:
            _add(el, "ID", r.id)
        for tag, values in (
            ("AllowedHeader", r.allowed_headers),
            ("AllowedMethod", r.allowed_methods),
            ("AllowedOrigin", r.allowed_origins),
            ("ExposeHeader", r.expose_headers),
        ):
            for v in values:
                _add(el, tag, v)
        if r.max_age_seconds is not None:
            _add(el, "MaxAgeSeconds", r.max_age_seconds)
    return _doc(root)


def _cors_rule(el: ET.Element) -> cors.Rule:
    values: dict[str, list[str]] = {tag: [] for tag in _CORS_FIELDS}
    for child in el:
        tag = _local(child.tag)
        if tag not in _CORS_FIELDS:
            raise MalformedXML(f"<CORSRule> has an unknown element <{tag}>")
        if values[tag] and not _CORS_FIELDS[tag]:
            raise MalformedXML(f"<CORSRule> has more than one <{tag}>")
        values[tag].append((child.text or "").strip())
    max_age = None
    if values["MaxAgeSeconds"]:
        raw = values["MaxAgeSeconds"][0]
        try:
            max_age = int(raw)
        except ValueError:
            raise MalformedXML(f"<MaxAgeSeconds> {raw!r} is not an integer") from None
    return cors.Rule(
        tuple(values["AllowedOrigin"]),
        tuple(values["AllowedMethod"]),
        tuple(values["AllowedHeader"]),
        tuple(values["ExposeHeader"]),
        max_age,
        values["ID"][0] if values["ID"] else "",
    )


def parse_cors(body: bytes) -> list[cors.Rule]:
    """A CORSConfiguration, checked as S3 checks it (tristore.cors.check_rules)."""
    root = _parse(body, "CORSConfiguration")
    for child in root:
        if _local(child.tag) != "CORSRule":
            raise MalformedXML(f"<CORSConfiguration> has an unknown element <{_local(child.tag)}>")
    return list(cors.check_rules([_cors_rule(r) for r in _children(root, "CORSRule")]))
