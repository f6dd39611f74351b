"""Who may call what: a node checks every call of its public services here
before the handler runs (tristore/server.py's interceptor calls :meth:`Guard.admit`).

Authentication (tristore/sigv4.py): the signature in the call's metadata, its
time window, the payload digest, and the access key (node/iam.py). Warm, it
costs no RPC: the user table is cached for ``[auth] cache_s`` and derived
signing keys per (key id, date, region), so a revoked key stops working on
every node within ``cache_s`` (at once on the node that revoked it).

Authorization, for a caller who is not an admin:

1. a bucket policy statement that denies the request: refused (explicit deny
   wins, for admins too; only root may always read, replace and delete a
   bucket's policy, so that no policy locks a bucket for good);
2. one that allows it: allowed;
3. the bucket's owner (the user who created it): allowed;
4. GetObject/HeadObject of an object whose canned ACL is ``public-read`` or
   ``public-read-write`` (anyone, anonymous too) or ``authenticated-read``
   (any signed caller): allowed;
5. else AccessDenied naming the action and the resource.

Admin RPCs need the admin role (root has it). A replication principal may only
call ApplyReplica(s), for the buckets it names (or that a policy opens to it).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from node.coordinator import Coordinator
from node.iam import ADMIN, REPLICATION, ROOT, Iam, User
from node.metrics import AUTH_REFUSED
from tristore import cors, policy, sigv4
from tristore.config import ClusterConfig
from tristore.credentials import SIGNED_SERVICES
from tristore.errors import (
    AccessDenied,
    InvalidAccessKeyId,
    InvalidBucketName,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    SignatureDoesNotMatch,
    TristoreError,
)
from tristore.server import CALLER

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
_EMPTY_SHA = hashlib.sha256(b"").hexdigest()

# What kind of check a method gets.
ADMIN_ONLY = "admin"  # the admin role
ANY_USER = "any-user"  # any signed user (not a replication principal)
CREATE = "create"  # a user or admin
BUCKET = "bucket"  # on the bucket: policy, owner
OBJECT = "object"  # on an object: policy, owner, ACL
COPY = "copy"  # PutObject on the target, GetObject on the source
REPLICA = "replica"  # ApplyReplica(s): admin, or a replication principal's buckets
PER_KEY = "per-key"  # DeleteObjects: each key checked by the handler as DeleteObject

#: RPC (short name) -> (S3 action, kind). A public RPC missing here is admin-only.
RULES: dict[str, tuple[str, str]] = {
    "CreateBucket": ("s3:CreateBucket", CREATE),
    "DeleteBucket": ("s3:DeleteBucket", BUCKET),
    "HeadBucket": ("s3:ListBucket", BUCKET),
    "ListBuckets": ("s3:ListAllMyBuckets", ANY_USER),
    "PutObject": ("s3:PutObject", OBJECT),
    "PutSmallObject": ("s3:PutObject", OBJECT),
    "GetObject": ("s3:GetObject", OBJECT),
    "GetSmallObject": ("s3:GetObject", OBJECT),
    "HeadObject": ("s3:GetObject", OBJECT),
    "DeleteObject": ("s3:DeleteObject", OBJECT),
    "DeleteObjects": ("s3:DeleteObject", PER_KEY),
    "ListObjects": ("s3:ListBucket", BUCKET),
    "PutBucketVersioning": ("s3:PutBucketVersioning", BUCKET),
    "GetBucketVersioning": ("s3:GetBucketVersioning", BUCKET),
    "ListObjectVersions": ("s3:ListBucketVersions", BUCKET),
    "GetObjectTagging": ("s3:GetObjectTagging", OBJECT),
    "PutObjectTagging": ("s3:PutObjectTagging", OBJECT),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", OBJECT),
    "GetObjectAcl": ("s3:GetObjectAcl", OBJECT),
    # S3 HTTP API only (node/s3/): an object's ETag, checksum, parts, size.
    "GetObjectAttributes": ("s3:GetObjectAttributes", OBJECT),
    "PutObjectAcl": ("s3:PutObjectAcl", OBJECT),
    "CopyObject": ("s3:PutObject", COPY),
    "CreateMultipartUpload": ("s3:PutObject", OBJECT),
    "UploadPart": ("s3:PutObject", OBJECT),
    "CompleteMultipartUpload": ("s3:PutObject", OBJECT),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", OBJECT),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", BUCKET),
    "ListParts": ("s3:ListMultipartUploadParts", OBJECT),
    "PutBucketReplication": ("s3:PutReplicationConfiguration", BUCKET),
    "GetBucketReplication": ("s3:GetReplicationConfiguration", BUCKET),
    "DeleteBucketReplication": ("s3:PutReplicationConfiguration", BUCKET),
    "ApplyReplica": ("s3:ReplicateObject", REPLICA),
    "ApplyReplicas": ("s3:ReplicateObject", REPLICA),
    "PutBucketPolicy": ("s3:PutBucketPolicy", BUCKET),
    "GetBucketPolicy": ("s3:GetBucketPolicy", BUCKET),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", BUCKET),
    # S3 has no s3:DeleteBucketCORS: deleting the configuration is putting it.
    "PutBucketCors": ("s3:PutBucketCORS", BUCKET),
    "GetBucketCors": ("s3:GetBucketCORS", BUCKET),
    "DeleteBucketCors": ("s3:PutBucketCORS", BUCKET),
    # Nor an s3:DeleteBucketTagging: deleting the tags is putting them.
    "PutBucketTagging": ("s3:PutBucketTagging", BUCKET),
    "GetBucketTagging": ("s3:GetBucketTagging", BUCKET),
    "DeleteBucketTagging": ("s3:PutBucketTagging", BUCKET),
    "Subscribe": ("s3:ListenBucketNotification", BUCKET),
    # Operations only the S3 HTTP API has (node/s3/); DeleteObjects is checked
    # key by key as DeleteObject, as S3 does.
    "GetBucketLocation": ("s3:GetBucketLocation", BUCKET),
    # A browser form upload (POST Object) is a PutObject of the form's key.
    "PostObject": ("s3:PutObject", OBJECT),
    "GetBucketAcl": ("s3:GetBucketAcl", BUCKET),
    "PutBucketAcl": ("s3:PutBucketAcl", BUCKET),
    # Configurations not offered, read as none (node/s3/configs.py); S3 has no
    # s3:DeleteLifecycleConfiguration: deleting it is putting it.
    "GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration", BUCKET),
    "DeleteBucketLifecycle": ("s3:PutLifecycleConfiguration", BUCKET),
    "GetBucketWebsite": ("s3:GetBucketWebsite", BUCKET),
    "DeleteBucketWebsite": ("s3:DeleteBucketWebsite", BUCKET),
    "GetBucketLogging": ("s3:GetBucketLogging", BUCKET),
    "GetBucketNotificationConfiguration": ("s3:GetBucketNotification", BUCKET),
    "GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration", BUCKET),
    "GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock", BUCKET),
    "GetBucketOwnershipControls": ("s3:GetBucketOwnershipControls", BUCKET),
    "GetBucketAccelerateConfiguration": ("s3:GetAccelerateConfiguration", BUCKET),
    "GetBucketRequestPayment": ("s3:GetBucketRequestPayment", BUCKET),
}
PUBLIC_READ_ACLS = ("public-read", "public-read-write")
#: The reads a public-read (or authenticated-read) object ACL opens.
_READS = frozenset({"GetObject", "GetSmallObject", "HeadObject", "GetObjectAttributes"})
#: What root may always do to a bucket, whatever its policy says.
POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})

#: Whether the caller of the RPC being handled has the admin role (set by the guard).
CALLER_IS_ADMIN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tristore_caller_is_admin", default=True
)
#: For a PER_KEY call (DeleteObjects): ``await check(bucket, key, version_id)``
#: raises AccessDenied unless the caller may DeleteObject that key (set by the
#: guard after authenticating the call; None when no signatures are checked).
KEY_CHECK: contextvars.ContextVar[Callable[[str, str, str], Awaitable[None]] | None] = (
    contextvars.ContextVar("tristore_key_check", default=None)
)
_REFUSED: dict[str, Any] = {}
#: The caller, bucket, key and condition keys of the read (:data:`_READS`)
#: being handled, once the guard let it in (None: not a read through the
#: guard): what :meth:`Guard.answer_for` asks of a read that found no key.
_ADMITTED: contextvars.ContextVar[tuple[User | None, str, str, Mapping[str, str]] | None] = (
    contextvars.ContextVar("tristore_admitted", default=None)
)


@dataclass(frozen=True)
class _BucketAuth:
    exists: bool
    owner: str = ""
    policy: policy.Policy | None = None
    cors: tuple[cors.Rule, ...] = ()


def enter(user: User | None) -> None:
    """Make ``user`` (None: anonymous) the caller of the request being handled
    (the context variables the bucket owner and ListBuckets read)."""
    CALLER.set(user.name if user is not None else "")
    CALLER_IS_ADMIN.set(user is not None and user.role == ADMIN)


def count_refused(e: TristoreError) -> None:
    """Count a refused request (tristore_auth_refused_total) by its error code."""
    refused = _REFUSED.get(e.code)
    if refused is None:
        refused = _REFUSED[e.code] = AUTH_REFUSED.labels(e.code)
    refused.inc()


def _denied(who: str, action: str, resource: str) -> AccessDenied:
    return AccessDenied(
        f"{who} is not authorized to perform {action} on resource arn:aws:s3:::{resource}"
    )


def _peer_ip(context: grpc.aio.ServicerContext) -> str:
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""


def _secure(context: grpc.aio.ServicerContext) -> bool:
    try:
        kind = context.auth_context().get("transport_security_type") or []
    except Exception:  # noqa: BLE001 - no auth context: not TLS
        return False
    return b"ssl" in kind


class _CallConditions(Mapping[str, str]):
    """The policy condition keys of a gRPC call (aws:SourceIp,
    aws:SecureTransport), read from the call only when a bucket policy's
    condition asks for one: most buckets have no policy, and reading them
    costs a call's peer and auth context on every request."""

    __slots__ = ("_context", "_keys")

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context
        self._keys: dict[str, str] | None = None

    def _read(self) -> dict[str, str]:
        if self._keys is None:
            self._keys = {
                "aws:SourceIp": _peer_ip(self._context),
                "aws:SecureTransport": str(_secure(self._context)).lower(),
            }
        return self._keys

    def __getitem__(self, name: str) -> str:
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


class _Over(Mapping[str, str]):
    """``own`` over ``base``, neither copied (``base`` may read its keys lazily)."""

    __slots__ = ("_base", "_own")

    def __init__(self, own: dict[str, str], base: Mapping[str, str]) -> None:
        self._own = own
        self._base = base

    def __getitem__(self, name: str) -> str:
        own = self._own.get(name)
        return own if own is not None else self._base[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._own
        yield from (k for k in self._base if k not in self._own)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Guard:
    """The node's :class:`tristore.server.Guard`."""

    def __init__(self, cfg: ClusterConfig, iam: Iam, coord: Coordinator) -> None:
        self.cfg = cfg
        self.iam = iam
        self.coord = coord
        self.enabled = cfg.auth.enabled
        #: (key id, date, region) -> (the secret it came from, derived key).
        self._keys: dict[tuple[str, str, str], tuple[str, bytes]] = {}
        self._buckets: dict[str, tuple[float, _BucketAuth]] = {}
        coord.buckets.on_change = self.forget

    def covers(self, method: str) -> bool:
        return method.startswith(SIGNED_SERVICES)

    def forget(self, bucket: str) -> None:
        """Drop what is cached of a bucket's owner, policy and CORS rules (it changed here)."""
        self._buckets.pop(bucket, None)

    # -- authentication ----------------------------------------------------

    def signing_key(self, akid: str, secret: str, signed: sigv4.Signed) -> bytes:
        """The SigV4 signing key of ``signed``'s scope, derived once a day and region."""
        slot = (akid, signed.date, signed.region)
        hit = self._keys.get(slot)
        if hit is not None and hit[0] is secret:
            return hit[1]
        if len(self._keys) > 10_000:
            self._keys.clear()
        key = sigv4.signing_key(secret, signed.date, signed.region, signed.service)
        self._keys[slot] = (secret, key)
        return key

    async def authenticate(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        payload: Any,
        resource: tuple[str, str, str],
    ) -> User | None:
        """The signed caller (None: anonymous); raises when a signature is
        present and wrong. ``resource``: the payload's, as
        :func:`tristore.sigv4.resource_of` finds it."""
        signed = sigv4.parse(context.invocation_metadata())
        if signed is None:
            return None
        sigv4.check_time(signed)
        found = await self.iam.lookup(signed.access_key_id)
        if found is None:
            raise InvalidAccessKeyId(
                f"the access key id {signed.access_key_id} does not exist in this cluster"
            )
        user, secret = found
        sha = _EMPTY_SHA if payload is None else sigv4.payload_sha256(payload)
        key = self.signing_key(signed.access_key_id, secret, signed)
        want = sigv4.expected(signed, key, method, resource, sha)
        if not sigv4.matches(want, signed.signature) or signed.payload_sha256 != sha:
            raise SignatureDoesNotMatch(
                "the request signature does not match the one calculated from its content "
                "and your secret key; check the key and the signing method"
            )
        return user

    # -- authorization -----------------------------------------------------

    async def visible(self, names: list[str]) -> set[str]:
        """The buckets of ``names`` the caller owns (all of them for an admin,
        or when signatures are not checked): what ListBuckets shows, as S3's."""
        if not self.enabled or CALLER_IS_ADMIN.get():
            return set(names)
        caller = CALLER.get()
        out = set()
        for name in names:
            info = await self._bucket(name)
            if info.exists and caller and info.owner == caller:
                out.add(name)
        return out

    async def bucket_cors(self, name: str) -> tuple[cors.Rule, ...]:
        """The bucket's CORS rules (none: no configuration, or no such bucket)
        as cached with its owner and policy: what the S3 door answers
        preflights and cross-origin requests with. Costs no read while the
        request's authorization has it cached (or will: the same entry), so a
        change shows on this node at once and on the others within
        ``[auth] cache_s``, as a policy change does."""
        return (await self._bucket(name)).cors

    async def bucket_owner(self, name: str) -> str:
        """The user who owns bucket ``name`` ("" if it has none), from the same
        cached record its requests are authorized with: the Owner S3 listings
        show (the bucket owner owns every object, as S3's BucketOwnerEnforced)."""
        return (await self._bucket(name)).owner

    async def expected_owner(self, name: str, expected: str, header: str) -> None:
        """``header`` (x-amz-expected-bucket-owner, or a copy's
        x-amz-source-expected-bucket-owner) names who the caller expects owns
        bucket ``name``: AccessDenied when someone else does, as S3 refuses a
        request meant for another owner's bucket. A bucket that does not
        exist is left to the operation (NoSuchBucket)."""
        info = await self._bucket(name)
        if info.exists and info.owner != expected:
            raise AccessDenied(
                f"bucket {name!r} is not owned by {expected!r} ({header}); "
                "check the bucket name and the owner expected"
            )

    async def _bucket(self, name: str) -> _BucketAuth:
        hit = self._buckets.get(name)
        now = time.monotonic()
        if hit is not None and now - hit[0] <= self.cfg.auth.cache_s:
            return hit[1]
        try:
            record = await self.coord.buckets.bucket_record(name)
        except NoSuchBucket:
            auth = _BucketAuth(False)
        else:
            text = self.coord.buckets.policy_text(record)
            pol = policy.parse(text, name) if text else None
            rules = self.coord.buckets.cors_rules(record)
            auth = _BucketAuth(True, record.owner, pol, rules)
        if len(self._buckets) > 10_000:
            self._buckets.clear()
        self._buckets[name] = (now, auth)
        return auth

    async def _allowed(
        self,
        user: User | None,
        action: str,
        bucket: str,
        key: str | None,
        context: Mapping[str, str],
        acl_of: tuple[str, str] | None = None,
    ) -> bool:
        """Steps 1-4 of the module's list for one action on one resource (an
        admin: only step 1, and root may always read, replace and delete a
        bucket's policy, so that a policy that denies everyone everything can be
        undone, as S3's root user can)."""
        admin = user is not None and user.role == ADMIN
        try:
            info = await self._bucket(bucket)
        except InvalidBucketName:
            if user is None:  # an anonymous caller learns nothing
                return False
            if admin:
                return True  # no policy to deny it: the handler says what is wrong
            raise
        if not info.exists:
            # Let a signed user learn NoSuchBucket from the handler; an anonymous
            # one learns nothing.
            return user is not None and user.role != REPLICATION
        name = user.name if user is not None else None
        verdict = policy.evaluate(info.policy, policy.Request(name, action, bucket, key, context))
        if verdict == policy.DENY:
            return admin and name == ROOT and action in POLICY_ACTIONS
        if admin or verdict == policy.ALLOW:
            return True
        if user is not None and user.role != REPLICATION and info.owner == user.name:
            return True
        if acl_of is not None and key is not None:
            acl = await self._acl(bucket, key, acl_of[1])
            if acl in PUBLIC_READ_ACLS or (acl == "authenticated-read" and user is not None):
                return True
        return False

    async def _acl(self, bucket: str, key: str, version_id: str) -> str:
        try:
            return (await self.coord.get_object_acl(bucket, key, version_id)).acl
        except (NoSuchKey, NoSuchVersion):
            return ""
        except TristoreError:
            return ""

    async def admit(
        self, method: str, context: grpc.aio.ServicerContext, message: Any, streamed: bool
    ) -> None:
        if not self.enabled:
            CALLER.set("root")
            return
        try:
            payload = sigv4.payload_of(message, streamed) if message is not None else None
            await self._admit(method, context, message, payload)
        except TristoreError as e:
            count_refused(e)
            raise

    async def _admit(
        self, method: str, context: grpc.aio.ServicerContext, message: Any, payload: Any
    ) -> None:
        resource = sigv4.resource_of(payload) if payload is not None else ("", "", "")
        user = await self.authenticate(method, context, payload, resource)
        enter(user)
        short = method.rsplit("/", 1)[-1]
        public = method.startswith("/tristore.v1.ObjectService/") or short == "Subscribe"
        if public and RULES.get(short, ("", ADMIN_ONLY))[1] == REPLICA:
            who = f"user {user.name}" if user is not None else ANONYMOUS
            await self._admit_replicas(user, who, message, payload)
            return
        bucket, key, version = resource
        ctx = _CallConditions(context)
        if short in _READS:  # only a read may need it (answer_for), not every PUT
            _ADMITTED.set((user, bucket, key, ctx))
        if public and RULES.get(short, ("", ADMIN_ONLY))[1] == PER_KEY:
            KEY_CHECK.set(await self._key_check(user, short, bucket, message, ctx))
            return
        source = None
        if short == "CopyObject":
            source = (message.source_bucket, message.source_key, message.source_version_id)
        await self.authorize(
            user,
            short,
            bucket,
            key,
            version,
            ctx,
            prefix=str(getattr(message, "prefix", "")),
            source=source,
            admin_only=not public,
        )

    async def answer_for(self, method: str, exc: Exception) -> Exception:
        """A read of a key that is not there (NoSuchKey) answers AccessDenied
        to a caller who may not list the bucket: see :meth:`absent`."""
        admitted = _ADMITTED.get()
        if (
            not isinstance(exc, NoSuchKey)
            or admitted is None
            or method.rsplit("/", 1)[-1] not in _READS
        ):
            return exc
        user, bucket, key, ctx = admitted
        return await self.absent(user, bucket, key, ctx, exc)

    async def absent(
        self,
        user: User | None,
        bucket: str,
        key: str,
        ctx: Mapping[str, str],
        missing: NoSuchKey,
    ) -> TristoreError:
        """What a read of a key that is not there answers, whichever door it
        came in by: NoSuchKey (404) only to a caller who may list the bucket
        (s3:ListBucket, the key as the prefix); to any other AccessDenied
        (403), as S3 answers, so that a caller allowed to read keys it cannot
        list does not learn which keys exist."""
        try:
            await self.authorize(user, "ListObjects", bucket, "", "", ctx, prefix=key)
        except AccessDenied:
            return AccessDenied(
                f"Access Denied: {bucket}/{key} cannot be read (without "
                "s3:ListBucket on the bucket, a missing key answers this)"
            )
        return missing

    async def _key_check(
        self, user: User | None, operation: str, bucket: str, message: Any, ctx: Mapping[str, str]
    ) -> Callable[[str, str, str], Awaitable[None]]:
        """Admit a PER_KEY call (DeleteObjects): each key it names is checked
        as the single-key operation (DeleteObject). A call that may delete none
        of its keys is refused whole (one that names none: as the bucket-level
        check); otherwise the returned check refuses the denied keys one by one,
        as S3 answers them."""
        single = operation.removesuffix("s")
        items = [(o.key, o.version_id) for o in getattr(message, "objects", ())]
        if not items:
            await self.authorize(user, single, bucket, "", "", ctx)
        refused: dict[tuple[str, str], TristoreError] = {}
        for key, version_id in items:
            try:
                await self.authorize(user, single, bucket, key, version_id, ctx)
            except TristoreError as e:
                refused[key, version_id] = e
        if items and len(refused) == len(set(items)):
            raise refused[items[0]]

        async def check(b: str, key: str, version_id: str) -> None:
            err = refused.get((key, version_id))
            if err is not None or b != bucket:
                raise err or _denied("caller", "s3:DeleteObject", f"{b}/{key}")

        return check

    async def authorize(
        self,
        user: User | None,
        operation: str,
        bucket: str,
        key: str,
        version: str,
        ctx: Mapping[str, str],
        prefix: str = "",
        source: tuple[str, str, str] | None = None,
        admin_only: bool = False,
    ) -> None:
        """Whether ``user`` (None: anonymous) may do ``operation`` (an
        ObjectService RPC name, :data:`RULES`) on ``bucket``/``key``: raises
        AccessDenied if not. Both doors call it (the gRPC interceptor through
        :meth:`admit`, the S3 HTTP API directly), so a request is allowed or
        refused the same whichever door it came in by. ``ctx``: the policy
        condition keys of the request (aws:SourceIp, aws:SecureTransport);
        ``source``: a copy's source (bucket, key, version id)."""
        if not self.enabled:
            return
        who = f"user {user.name}" if user is not None else ANONYMOUS
        action, kind = RULES.get(operation, ("tristore:" + operation, ADMIN_ONLY))
        if admin_only:
            kind = ADMIN_ONLY
        if kind == ADMIN_ONLY:
            if user is None or user.role != ADMIN:
                raise AccessDenied(
                    f"{who} is not authorized to call {operation}: it needs the admin role"
                )
            return
        if kind in (ANY_USER, CREATE):
            if user is None or user.role == REPLICATION:
                raise _denied(who, action, "*")
            return
        if kind == REPLICA:
            raise _denied(who, action, "*")
        if user is not None and user.role == REPLICATION:
            raise _denied(who, action, "*")
        own: dict[str, str] = {}
        if user is not None:
            own["aws:username"] = user.name
        if operation in ("ListObjects", "ListObjectVersions", "ListMultipartUploads"):
            own["s3:prefix"] = prefix
        ctx = _Over(own, ctx)  # the call's own keys read only if a policy asks
        if kind == BUCKET or not key:
            if not await self._allowed(user, action, bucket, None, ctx):
                raise _denied(who, action, bucket)
            return
        acl_of = (bucket, version) if operation in _READS else None
        if not await self._allowed(user, action, bucket, key, ctx, acl_of):
            raise _denied(who, action, f"{bucket}/{key}")
        if kind == COPY and source is not None:
            src_b, src_k, src_v = source
            if not await self._allowed(user, "s3:GetObject", src_b, src_k, ctx, (src_b, src_v)):
                raise _denied(who, "s3:GetObject", f"{src_b}/{src_k}")

    async def _admit_replicas(
        self, user: User | None, who: str, message: Any, payload: Any
    ) -> None:
        """Admins, and replication principals within their buckets (or a
        bucket whose policy grants them s3:ReplicateObject)."""
        if user is not None and user.role == ADMIN:
            return
        if user is None or user.role != REPLICATION or message is None:
            raise _denied(who, "s3:ReplicateObject", "*")
        items = getattr(message, "items", None)
        versions = [i.header.version for i in items] if items is not None else [payload.version]
        for b in sorted({v.bucket for v in versions}):
            if user.may_replicate_to(b):
                continue
            try:
                info = await self._bucket(b)
            except TristoreError:  # not a bucket name: nothing to grant
                raise _denied(who, "s3:ReplicateObject", b) from None
            req = policy.Request(user.name, "s3:ReplicateObject", b, None, {})
            if info.exists and policy.evaluate(info.policy, req) == policy.ALLOW:
                continue
            raise _denied(who, "s3:ReplicateObject", b)
