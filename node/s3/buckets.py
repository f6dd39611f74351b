"""The S3 operations on the service and on buckets: create, head, delete,
location, versioning, policy, encryption, replication, CORS, tagging, ACLs,
listings and DeleteObjects.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from aiohttp import web

from node import bulk_delete
from node.s3 import headers as hdr
from node.s3 import xml
from node.s3.call import Base, Call, answer, empty
from tristore import errors, validation
from tristore.errors import InvalidArgument
from tristore.model import VERSIONING_ENABLED, VERSIONING_SUSPENDED, BucketInfo, DeletedObject


class BucketHandlers(Base):
    """One method per bucket-level S3 operation."""

    async def list_buckets(self, call: Call) -> web.StreamResponse:
        await self.guard.authorize(call.caller.user, "ListBuckets", "", "", "", call.context)
        q = call.query
        prefix = q.get("prefix")
        limit = max_buckets(q.get("max-buckets"))
        after = bucket_after(q["continuation-token"]) if "continuation-token" in q else ""
        buckets = await self.coord.list_buckets()
        if q.get("bucket-region", self.region) != self.region:
            buckets = []  # every bucket here is in the cluster's region
        shown = await self.guard.visible([b.name for b in buckets])
        page, token = bucket_page([b for b in buckets if b.name in shown], prefix, limit, after)
        return answer(xml.list_buckets(page, call.owner, self.region, prefix, token))

    async def create_bucket(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "CreateBucket")
        refuse_bucket_acl(call.headers)
        ownership = call.headers.get("x-amz-object-ownership", OWNER_ENFORCED).strip()
        if ownership != OWNER_ENFORCED:
            if ownership not in OTHER_OWNERSHIPS:
                raise InvalidArgument(
                    f"x-amz-object-ownership {ownership!r} is not one of "
                    f"{', '.join((OWNER_ENFORCED, *OTHER_OWNERSHIPS))}"
                )
            raise errors.NotImplemented(
                f"object ownership {ownership} is not supported: no bucket was created; every "
                f"object is its bucket owner's ({OWNER_ENFORCED}), leave the header out"
            )
        if call.headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true":
            raise errors.NotImplemented(
                "Object Lock is not supported: no bucket was created; create it without "
                "x-amz-bucket-object-lock-enabled"
            )
        constraint = xml.parse_create_bucket(await self.small_body(call, optional=True))
        validation.check_location_constraint(constraint, self.region)
        await self.coord.create_bucket(call.bucket)
        return empty(headers={"Location": f"/{call.bucket}"})

    async def head_bucket(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "HeadBucket")
        await self.coord.head_bucket(call.bucket)
        return empty(headers={"x-amz-bucket-region": self.region})

    async def delete_bucket(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucket")
        await self.coord.delete_bucket(call.bucket)
        return empty(204)

    async def get_bucket_location(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketLocation")
        await self.coord.head_bucket(call.bucket)
        return answer(xml.location(self.region))

    async def get_bucket_versioning(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketVersioning")
        info = await self.coord.head_bucket(call.bucket)
        return answer(xml.versioning(info.versioning))

    async def put_bucket_versioning(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketVersioning")
        status = xml.parse_versioning(await self.small_body(call))
        if status not in (VERSIONING_ENABLED, VERSIONING_SUSPENDED):
            raise errors.MalformedXML(
                f"<Status> must be {VERSIONING_ENABLED} or {VERSIONING_SUSPENDED}, not {status!r}"
            )
        await self.coord.put_bucket_versioning(call.bucket, status)
        return empty()

    async def get_bucket_policy(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketPolicy")
        text = await self.coord.get_bucket_policy(call.bucket)
        return web.Response(text=text, content_type="application/json")

    async def put_bucket_policy(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketPolicy")
        text = (await self.small_body(call, 20 * 1024)).decode("utf-8", errors="replace")
        await self.coord.put_bucket_policy(call.bucket, text)
        return empty(204)

    async def delete_bucket_policy(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucketPolicy")
        await self.coord.delete_bucket_policy(call.bucket)
        return empty(204)

    async def get_bucket_encryption(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketEncryption")
        return answer(xml.encryption(await self.coord.get_bucket_encryption(call.bucket)))

    async def put_bucket_encryption(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketEncryption")
        algorithm = xml.parse_encryption(await self.small_body(call))
        await self.coord.put_bucket_encryption(call.bucket, algorithm)
        return empty()

    async def delete_bucket_encryption(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucketEncryption")
        await self.coord.delete_bucket_encryption(call.bucket)
        return empty(204)

    async def get_bucket_replication(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketReplication")
        rules = await self.coord.get_bucket_replication(call.bucket)
        if not rules:
            raise errors.ReplicationConfigurationNotFoundError(
                f"bucket {call.bucket!r} has no replication configuration"
            )
        return answer(xml.replication_config(rules))

    async def put_bucket_replication(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketReplication")
        rules = xml.parse_replication(await self.small_body(call))
        await self.coord.put_bucket_replication(call.bucket, rules)
        return empty()

    async def delete_bucket_replication(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucketReplication")
        await self.coord.delete_bucket_replication(call.bucket)
        return empty(204)

    async def get_bucket_cors(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketCors")
        return answer(xml.cors_config(await self.coord.get_bucket_cors(call.bucket)))

    async def put_bucket_cors(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketCors")
        rules = xml.parse_cors(await self.small_body(call, xml.MAX_CORS_XML))
        await self.coord.put_bucket_cors(call.bucket, rules)
        return empty()

    async def delete_bucket_cors(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucketCors")
        await self.coord.delete_bucket_cors(call.bucket)
        return empty(204)

    async def get_bucket_acl(self, call: Call) -> web.StreamResponse:
        """The bucket owner's FULL_CONTROL, and nothing else: a bucket's ACL
        is always ``private`` (access is given by bucket policies)."""
        await self.allow(call, "GetBucketAcl")
        await self.coord.head_bucket(call.bucket)
        return answer(xml.acl(await self.guard.bucket_owner(call.bucket), "private"))

    async def put_bucket_acl(self, call: Call) -> web.StreamResponse:
        """The ACL a bucket has already (``private``, or a body granting only
        the owner FULL_CONTROL) is taken and changes nothing; any other is
        NotImplemented, as CreateBucket answers it."""
        await self.allow(call, "PutBucketAcl")
        await self.coord.head_bucket(call.bucket)
        refuse_bucket_acl(call.headers)
        body = await self.small_body(call)
        if body.strip() or "x-amz-acl" not in call.headers:
            owner = await self.guard.bucket_owner(call.bucket)
            refuse_bucket_grants(xml.parse_acl(body), owner)
        return empty()

    async def get_bucket_tagging(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "GetBucketTagging")
        return answer(xml.tagging(await self.coord.get_bucket_tagging(call.bucket)))

    async def put_bucket_tagging(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "PutBucketTagging")
        tags = xml.parse_bucket_tagging(await self.small_body(call))
        await self.coord.put_bucket_tagging(call.bucket, tags)
        return empty(204)

    async def delete_bucket_tagging(self, call: Call) -> web.StreamResponse:
        await self.allow(call, "DeleteBucketTagging")
        await self.coord.delete_bucket_tagging(call.bucket)
        return empty(204)

    async def list_objects(self, call: Call) -> web.StreamResponse:
        q = call.query
        v2 = q.get("list-type") == "2"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        enc = q.get("encoding-type", "")
        if enc not in ("", "url"):
            raise InvalidArgument(f"encoding-type must be url, not {enc!r}")
        await self.allow(call, "ListObjects", prefix=prefix)
        max_keys = validation.cap_max_keys(call.int_param("max-keys", 1000))
        # Each entry's Owner: always in v1, with fetch-owner=true in v2, as in S3.
        fetch_owner = not v2 or q.get("fetch-owner", "").lower() == "true"
        owner = await self.guard.bucket_owner(call.bucket) if fetch_owner else None
        if v2:
            token = q.get("continuation-token", "")
            args = xml.ListArgs(
                call.bucket, prefix, delimiter, max_keys, enc, token, q.get("start-after", ""),
                owner=owner,
            )  # fmt: skip
            page = await self.coord.list_objects(
                call.bucket, prefix, delimiter, max_keys, token or None, args.start_after
            )
            return answer(xml.list_objects_v2(page, args))
        marker = q.get("marker", "")
        args = xml.ListArgs(
            call.bucket, prefix, delimiter, max_keys, enc, marker=marker, owner=owner
        )
        after = marker
        if delimiter and marker.endswith(delimiter) and marker.startswith(prefix):
            # A common prefix as the marker: skip every key under it.
            after = marker + "\U0010ffff"
        page = await self.coord.list_objects(call.bucket, prefix, delimiter, max_keys, None, after)
        return answer(xml.list_objects_v1(page, args))

    async def list_object_versions(self, call: Call) -> web.StreamResponse:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        await self.allow(call, "ListObjectVersions", prefix=prefix)
        max_keys = validation.cap_max_keys(call.int_param("max-keys", 1000))
        key_marker, vid_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
        page = await self.coord.list_object_versions(
            call.bucket, prefix, delimiter, max_keys, key_marker, vid_marker
        )
        # Every Owner is the bucket's, as ListObjects' (S3's BucketOwnerEnforced).
        owner = await self.guard.bucket_owner(call.bucket)
        args = xml.ListArgs(
            call.bucket, prefix, delimiter, max_keys, q.get("encoding-type", ""), owner=owner
        )
        return answer(xml.list_versions(page, args, key_marker, vid_marker))

    async def list_multipart_uploads(self, call: Call) -> web.StreamResponse:
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        enc = q.get("encoding-type", "")
        if enc not in ("", "url"):
            raise InvalidArgument(f"encoding-type must be url, not {enc!r}")
        await self.allow(call, "ListMultipartUploads", prefix=prefix)
        key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        max_up = validation.cap_max_keys(call.int_param("max-uploads", 1000), "max-uploads")
        page = await self.multipart.list_uploads(
            call.bucket, prefix, key_marker, id_marker, max_up, delimiter
        )
        # Every Owner and Initiator is the bucket's, as ListObjects' (BucketOwnerEnforced).
        owner = await self.guard.bucket_owner(call.bucket)
        args = xml.ListArgs(call.bucket, prefix, delimiter, max_up, enc, owner=owner)
        return answer(xml.list_uploads(page, args, key_marker, id_marker))

    async def delete_objects(self, call: Call) -> web.StreamResponse:
        """POST ?delete: each key authorized and deleted as its own DeleteObject."""
        objects, quiet = xml.parse_delete(await self.small_body(call, integrity=True))

        async def check(key: str, version: str) -> None:
            await self.allow(call, "DeleteObject", key=key, version=version)

        results = await bulk_delete.delete_objects(self.coord, call.bucket, objects, check)
        return answer(xml.delete_result([_xml_item(r) for r in results], quiet))


#: S3's object ownership settings: the one tristore has (the bucket owner
#: owns every object, ACLs off), and the others.
OWNER_ENFORCED = "BucketOwnerEnforced"
OTHER_OWNERSHIPS = ("BucketOwnerPreferred", "ObjectWriter")


def refuse_bucket_acl(headers: Mapping[str, str]) -> None:
    """CreateBucket's and PutBucketAcl's ACL headers: a bucket's ACL is always
    ``private`` (its owner's FULL_CONTROL; others get access by bucket
    policies), so any other canned ACL, and any grant, is NotImplemented
    naming it, rather than taken and not applied."""
    acl = headers.get("x-amz-acl", "private")
    if acl != "private":
        raise errors.NotImplemented(f"bucket ACLs are not supported (x-amz-acl: {acl})")
    granted = hdr.grant_headers(headers)
    if granted:
        raise errors.NotImplemented(
            f"bucket ACLs are not supported ({', '.join(f'{h}: {headers[h]}' for h in granted)})"
        )


def refuse_bucket_grants(grants: Sequence[xml.Grant], owner: str) -> None:
    """A PutBucketAcl body: only the ``private`` ACL's one grant (FULL_CONTROL
    to the bucket's owner) is taken, as it changes nothing."""
    private = xml.canned_grants(owner, "private")
    other = [g for g in grants if g not in private]
    if other or not grants:
        named = ", ".join(str(g) for g in other) or "no grant at all"
        raise errors.NotImplemented(
            f"bucket ACLs are not supported (an AccessControlPolicy granting {named}); "
            "a bucket's ACL is private: its owner's FULL_CONTROL"
        )


#: Buckets a ListBuckets page holds at most (S3's max-buckets range is 1..10000;
#: without one, S3 answers every bucket up to this many).
MAX_BUCKETS = 10_000
#: What a ListBuckets continuation token starts with (it is opaque to clients).
_TOKEN_TAG = "tristore-buckets:"


def max_buckets(raw: str | None) -> int:
    """ListBuckets' ``max-buckets``: 1..10000, as S3 checks it (absent: 10000)."""
    if raw is None:
        return MAX_BUCKETS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_BUCKETS:
        raise InvalidArgument(
            f"max-buckets must be an integer from 1 to {MAX_BUCKETS}, not {raw[:32]!r}"
        )
    return n


def bucket_token(name: str) -> str:
    """The opaque ContinuationToken of the page after bucket ``name``."""
    return base64.urlsafe_b64encode((_TOKEN_TAG + name).encode()).decode()


def bucket_after(token: str) -> str:
    """The last bucket of the page a ContinuationToken came with; a token
    this endpoint did not make is InvalidArgument, as S3's answer to one."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (ValueError, UnicodeError):
        text = ""
    name = text[len(_TOKEN_TAG) :]
    if not text.startswith(_TOKEN_TAG) or not name or bucket_token(name) != token:
        raise InvalidArgument("The continuation token provided is incorrect")
    return name


def bucket_page(
    buckets: Sequence[BucketInfo], prefix: str | None, limit: int, after: str
) -> tuple[list[BucketInfo], str]:
    """One ListBuckets page: the buckets after ``after`` whose names start
    with ``prefix``, by name, at most ``limit``; and the next page's token
    ("" when this page is the last)."""
    chosen = sorted(
        (b for b in buckets if b.name > after and b.name.startswith(prefix or "")),
        key=lambda b: b.name,
    )
    page = chosen[:limit]
    return page, bucket_token(page[-1].name) if len(chosen) > limit else ""


def _xml_item(r: DeletedObject) -> xml.Deleted | xml.DeleteError:
    if not r.deleted:
        return xml.DeleteError(r.key, r.version_id, r.error_code, r.error_message)
    return xml.Deleted(r.key, r.version_id, r.delete_marker, r.delete_marker_version_id)
