"""The one exception tree of tristore, and its one mapping to gRPC.

Every error a user can see is a :class:`TristoreError` subclass named after its
S3 error code. Servers raise them; the server interceptor turns them into a gRPC
status with the code in trailing metadata (``tristore-error-code``); the SDK turns
that status back into the same exception class. ``retriable`` tells the client
whether trying again (possibly on another endpoint) can help.

Hierarchy::

    TristoreError
    ├── ClientError                 (the request is wrong: fix it, do not retry)
    │   ├── InvalidArgument, InvalidBucketName, KeyTooLongError,
    │   │   MetadataTooLarge, EntityTooLarge, InvalidRange, BadDigest, InvalidDigest,
    │   │   IncompleteBody, InvalidPart, PreconditionFailed,
    │   │   InvalidLocationConstraint, IllegalLocationConstraintException
    │   ├── InvalidRequest (└── SSECustomerKeyRequired)
    │   ├── NoSuchBucket, NoSuchKey, NoSuchVersion, CursorExpired,
    │   │   ReplicationConfigurationNotFoundError
    │   ├── BucketAlreadyExists (└── BucketAlreadyOwnedByYou), BucketNotEmpty
    │   ├── AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId,
    │   │   AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
    │   │   RequestTimeTooSkewed
    │   ├── MalformedPolicy, NoSuchBucketPolicy
    │   ├── NoSuchCORSConfiguration, AccessForbidden, BadRequest   (CORS)
    │   ├── NoSuchTagSet            (bucket tagging)
    │   ├── NoSuchLifecycleConfiguration, NoSuchWebsiteConfiguration,
    │   │   ObjectLockConfigurationNotFoundError,
    │   │   NoSuchPublicAccessBlockConfiguration, OwnershipControlsNotFoundError
    │   │                           (S3 HTTP: configurations not offered, so none)
    │   ├── NoSuchEntity, EntityAlreadyExists     (users and access keys)
│   ├── MalformedPOSTRequest, InvalidPolicyDocument,
│   │   IncorrectNumberOfFilesInPostRequest, MaxPostPreDataLengthExceeded
│   │                           (S3 HTTP: browser form uploads, POST Object)
    │   └── FileChanged             (the SDK's: a file changed during upload_file)
    └── ServerError                 (the cluster could not do it now)
        ├── QuorumUnavailable       (retriable: an AZ is unreachable)
        ├── ServiceUnavailable      (retriable: this endpoint cannot serve)
        ├── SlowDown                (retriable: back off)
        ├── StorageFull             (retriable: a node's disk is full)
        ├── KeyUnavailable          (a master key is missing)
        ├── OutcomeUnknown          (a retried write may or may not have taken effect)
        ├── CorruptData             (a stored copy failed its checksum; read elsewhere)
        └── InternalError

A few classes *refine* another: a narrower case S3 answers with the same code
(``SSECustomerKeyRequired`` is S3's InvalidRequest). They are not in
:data:`BY_CODE`; the server sends the class name too (``tristore-error-class``),
and the SDK raises the refinement when it knows it, the code's class otherwise.
Code that must tell the case apart catches the refinement, never reads the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import grpc

ERROR_CODE_KEY = "tristore-error-code"
ERROR_RETRIABLE_KEY = "tristore-error-retriable"
#: Trailer naming the class of an error that refines its code's (:data:`REFINEMENTS`).
ERROR_CLASS_KEY = "tristore-error-class"
#: Trailers naming the delete marker an error is about (:class:`DeleteMarker`).
DELETE_MARKER_KEY = "tristore-delete-marker"
DELETE_MARKER_MS_KEY = "tristore-delete-marker-ms"


@dataclass(frozen=True, slots=True)
class DeleteMarker:
    """The delete marker a NoSuchKey (the key's current version is one) or a
    MethodNotAllowed (the version asked for is one) is about: S3 names it in
    its answer (x-amz-delete-marker, x-amz-version-id, Last-Modified), so a
    client can tell a deleted key from one never written."""

    version_id: str
    last_modified_ms: int


class _Status:
    """``grpc.StatusCode.<name>``, looked up when first read: the CLI's parser and
    the core modules import this tree, and importing grpc costs ~70 ms a process."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> grpc.StatusCode:
        import grpc

        return grpc.StatusCode[self.name]


class TristoreError(Exception):
    """Base of every tristore error. ``code`` is the S3 error code."""

    code: ClassVar[str] = "InternalError"
    grpc_status = _Status("INTERNAL")
    retriable: ClassVar[bool] = False

    def __init__(self, message: str = "", delete_marker: DeleteMarker | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        #: The delete marker the error is about, if any (see :class:`DeleteMarker`).
        self.delete_marker = delete_marker

    def __str__(self) -> str:
        return self.message


class ClientError(TristoreError):
    grpc_status = _Status("INVALID_ARGUMENT")


class InvalidArgument(ClientError):
    code = "InvalidArgument"


class InvalidBucketName(ClientError):
    code = "InvalidBucketName"


class KeyTooLongError(ClientError):
    code = "KeyTooLongError"


class MetadataTooLarge(ClientError):
    code = "MetadataTooLarge"


class EntityTooLarge(ClientError):
    code = "EntityTooLarge"


class InvalidRange(ClientError):
    code = "InvalidRange"
    grpc_status = _Status("OUT_OF_RANGE")
    #: The size of the object no byte of which the range asks for, where
    #: known: S3's 416 tells it (``Content-Range: bytes */SIZE`` and
    #: ``ActualObjectSize``), and a client learns the length from it.
    object_size: int | None = None

    @classmethod
    def of_object(cls, message: str, size: int) -> InvalidRange:
        err = cls(message)
        err.object_size = size
        return err


class BadDigest(ClientError):
    code = "BadDigest"


class InvalidDigest(ClientError):
    """A Content-MD5 that is not an MD5 at all (S3: "The Content-MD5 you
    specified is not valid"), as opposed to BadDigest: one the body does not match."""

    code = "InvalidDigest"


class IncompleteBody(ClientError):
    code = "IncompleteBody"


class InvalidPart(ClientError):
    code = "InvalidPart"


class InvalidPartNumber(ClientError):
    """HTTP 416: GET or HEAD with a partNumber past the object's last part."""

    code = "InvalidPartNumber"
    grpc_status = _Status("OUT_OF_RANGE")


class InvalidPartOrder(ClientError):
    code = "InvalidPartOrder"


class EntityTooSmall(ClientError):
    code = "EntityTooSmall"


class MalformedXML(ClientError):
    """A request body S3 would parse as XML is malformed (an empty part list, say)."""

    code = "MalformedXML"


class PreconditionFailed(ClientError):
    code = "PreconditionFailed"
    grpc_status = _Status("FAILED_PRECONDITION")


class NotModified(ClientError):
    """HTTP 304: If-None-Match matched or If-Modified-Since is not older."""

    code = "NotModified"
    grpc_status = _Status("FAILED_PRECONDITION")


class ConditionalRequestConflict(ClientError):
    """HTTP 409: a conditional write raced another write to the key; retry."""

    code = "ConditionalRequestConflict"
    grpc_status = _Status("ABORTED")
    retriable = True


class MethodNotAllowed(ClientError):
    """HTTP 405: the version asked for is a delete marker."""

    code = "MethodNotAllowed"
    grpc_status = _Status("FAILED_PRECONDITION")


class InvalidTag(ClientError):
    code = "InvalidTag"


class InvalidStorageClass(ClientError):
    code = "InvalidStorageClass"


class InvalidRequest(ClientError):
    code = "InvalidRequest"


class SSECustomerKeyRequired(InvalidRequest):
    """A read (GET, HEAD, a copy's source, a part of an SSE-C upload) of an
    SSE-C object without its key. S3 answers it 400 InvalidRequest ("The
    object was stored using a form of Server Side Encryption. The correct
    parameters must be provided to retrieve the object."), as it answers many
    other refusals: a refinement (:data:`REFINEMENTS`), so that a client can
    tell it from them by its class."""


class MalformedPOSTRequest(ClientError):
    """S3 HTTP: a POST Object body that is not well-formed multipart/form-data."""

    code = "MalformedPOSTRequest"


class InvalidPolicyDocument(ClientError):
    """S3 HTTP: a POST Object policy that is not base64 JSON of S3's form
    (``expiration``, ``conditions``), as opposed to a form the policy refuses
    (AccessDenied, "Invalid according to Policy: ...")."""

    code = "InvalidPolicyDocument"


class IncorrectNumberOfFilesInPostRequest(ClientError):
    """S3 HTTP: a POST Object form without its ``file`` field."""

    code = "IncorrectNumberOfFilesInPostRequest"


class MaxPostPreDataLengthExceeded(ClientError):
    """S3 HTTP: the fields of a POST Object form before its file are too large."""

    code = "MaxPostPreDataLengthExceeded"


class IllegalVersioningConfigurationException(ClientError):
    code = "IllegalVersioningConfigurationException"


class InvalidLocationConstraint(ClientError):
    """A CreateBucketConfiguration whose LocationConstraint names no region."""

    code = "InvalidLocationConstraint"


class IllegalLocationConstraintException(ClientError):
    """A CreateBucketConfiguration whose LocationConstraint is a region, not
    the cluster's (S3's answer from a regional endpoint)."""

    code = "IllegalLocationConstraintException"


class NoSuchBucket(ClientError):
    code = "NoSuchBucket"
    grpc_status = _Status("NOT_FOUND")


class NoSuchKey(ClientError):
    code = "NoSuchKey"
    grpc_status = _Status("NOT_FOUND")


class NoSuchVersion(ClientError):
    code = "NoSuchVersion"
    grpc_status = _Status("NOT_FOUND")


class CursorExpired(ClientError):
    """An event or change-log cursor older than what the change log still
    holds (entries past ``[node] changelog_retention_s`` are trimmed)."""

    code = "CursorExpired"
    grpc_status = _Status("OUT_OF_RANGE")


class NoSuchUpload(ClientError):
    code = "NoSuchUpload"
    grpc_status = _Status("NOT_FOUND")


class ServerSideEncryptionConfigurationNotFoundError(ClientError):
    """GetBucketEncryption of a bucket without a default encryption."""

    code = "ServerSideEncryptionConfigurationNotFoundError"
    grpc_status = _Status("NOT_FOUND")


class ReplicationConfigurationNotFoundError(ClientError):
    """GetBucketReplication of a bucket without replication rules."""

    code = "ReplicationConfigurationNotFoundError"
    grpc_status = _Status("NOT_FOUND")


class BucketAlreadyExists(ClientError):
    """CreateBucket of a bucket another user owns."""

    code = "BucketAlreadyExists"
    grpc_status = _Status("ALREADY_EXISTS")


class BucketAlreadyOwnedByYou(BucketAlreadyExists):
    """CreateBucket of a bucket the caller owns already (S3's answer in every
    region but us-east-1's legacy endpoint, which answers 200). A subclass of
    BucketAlreadyExists, so that code catching that one catches both."""

    code = "BucketAlreadyOwnedByYou"


class BucketNotEmpty(ClientError):
    code = "BucketNotEmpty"
    grpc_status = _Status("FAILED_PRECONDITION")


class AccessDenied(ClientError):
    code = "AccessDenied"
    grpc_status = _Status("PERMISSION_DENIED")


class SignatureDoesNotMatch(ClientError):
    """The request's signature is not the one its access key's secret gives."""

    code = "SignatureDoesNotMatch"
    grpc_status = _Status("UNAUTHENTICATED")


class InvalidAccessKeyId(ClientError):
    """The access key id is not known to the cluster (or was revoked)."""

    code = "InvalidAccessKeyId"
    grpc_status = _Status("UNAUTHENTICATED")


class AuthorizationHeaderMalformed(ClientError):
    """An S3 HTTP request's ``Authorization: AWS4-HMAC-SHA256 ...`` header is
    not well formed: a component missing or malformed, or a credential scope
    that is not ``AKID/YYYYMMDD/REGION/s3/aws4_request``; the message names
    which (HTTP 400, as S3's)."""

    code = "AuthorizationHeaderMalformed"


class AuthorizationQueryParametersError(ClientError):
    """An S3 HTTP presigned URL's (SigV4 query string's) ``X-Amz-*``
    parameters are not well formed: one missing, an ``X-Amz-Algorithm``
    other than AWS4-HMAC-SHA256, an ``X-Amz-Credential`` that is not
    ``AKID/YYYYMMDD/REGION/s3/aws4_request`` or of another day than
    ``X-Amz-Date``, an ``X-Amz-Date`` that is not ``YYYYMMDDTHHMMSSZ``, an
    ``X-Amz-Expires`` that is not a number of seconds up to a week; the
    message names which (HTTP 400, as S3's)."""

    code = "AuthorizationQueryParametersError"


class RequestTimeTooSkewed(ClientError):
    """The request is dated more than 15 minutes away from the server's clock."""

    code = "RequestTimeTooSkewed"
    grpc_status = _Status("UNAUTHENTICATED")


class MalformedPolicy(ClientError):
    code = "MalformedPolicy"


class NoSuchBucketPolicy(ClientError):
    code = "NoSuchBucketPolicy"
    grpc_status = _Status("NOT_FOUND")


class NoSuchCORSConfiguration(ClientError):
    """GetBucketCors of a bucket without a CORS configuration."""

    code = "NoSuchCORSConfiguration"
    grpc_status = _Status("NOT_FOUND")


class NoSuchTagSet(ClientError):
    """GetBucketTagging of a bucket without tags."""

    code = "NoSuchTagSet"
    grpc_status = _Status("NOT_FOUND")


class NoSuchLifecycleConfiguration(ClientError):
    """GetBucketLifecycleConfiguration: tristore offers no lifecycle rules, so
    every bucket answers as S3's without one."""

    code = "NoSuchLifecycleConfiguration"
    grpc_status = _Status("NOT_FOUND")


class NoSuchWebsiteConfiguration(ClientError):
    """GetBucketWebsite: no bucket has a website configuration (not offered)."""

    code = "NoSuchWebsiteConfiguration"
    grpc_status = _Status("NOT_FOUND")


class ObjectLockConfigurationNotFoundError(ClientError):
    """GetObjectLockConfiguration: no bucket has Object Lock (not offered)."""

    code = "ObjectLockConfigurationNotFoundError"
    grpc_status = _Status("NOT_FOUND")


class NoSuchPublicAccessBlockConfiguration(ClientError):
    """GetPublicAccessBlock: no bucket has one (not offered)."""

    code = "NoSuchPublicAccessBlockConfiguration"
    grpc_status = _Status("NOT_FOUND")


class OwnershipControlsNotFoundError(ClientError):
    """GetBucketOwnershipControls: no bucket has them (not offered)."""

    code = "OwnershipControlsNotFoundError"
    grpc_status = _Status("NOT_FOUND")


class AccessForbidden(ClientError):
    """A CORS preflight (OPTIONS) that no rule of the bucket's CORS
    configuration allows, or of a bucket without one (S3's 403 CORSResponse)."""

    code = "AccessForbidden"
    grpc_status = _Status("PERMISSION_DENIED")


class BadRequest(ClientError):
    """A CORS preflight without Origin or with no valid Access-Control-Request-Method."""

    code = "BadRequest"


class NoSuchEntity(ClientError):
    """No user (or access key) of that name."""

    code = "NoSuchEntity"
    grpc_status = _Status("NOT_FOUND")


class EntityAlreadyExists(ClientError):
    code = "EntityAlreadyExists"
    grpc_status = _Status("ALREADY_EXISTS")


class ServerError(TristoreError):
    grpc_status = _Status("INTERNAL")


class StorageFull(ServerError):
    """A node refuses new data: its disk is below the free-space reserve
    (node/disk.py). Coordinators send the write to another node of the AZ."""

    code = "StorageFull"
    grpc_status = _Status("RESOURCE_EXHAUSTED")
    retriable = True


class KeyUnavailable(ServerError):
    """A sealed secret cannot be opened: its master key is not held by the key
    provider, or the blob was altered or sealed for another purpose."""

    code = "KeyUnavailable"
    grpc_status = _Status("FAILED_PRECONDITION")


class QuorumUnavailable(ServerError):
    """Not every AZ a write needs could be reached; the message names the AZ."""

    code = "QuorumUnavailable"
    grpc_status = _Status("UNAVAILABLE")
    retriable = True


class ServiceUnavailable(ServerError):
    code = "ServiceUnavailable"
    grpc_status = _Status("UNAVAILABLE")
    retriable = True


class SlowDown(ServerError):
    code = "SlowDown"
    grpc_status = _Status("RESOURCE_EXHAUSTED")
    retriable = True


class OutcomeUnknown(ServerError):
    """A retried write cannot tell whether its earlier attempt took effect:
    the key changed since the call began and keeps no version to look in.
    Not retriable (another try could not tell either): read the key."""

    code = "OutcomeUnknown"
    grpc_status = _Status("ABORTED")


class CorruptData(ServerError):
    """A value a node stored failed its checksum (or RocksDB's own block
    checksum) when read. Coordinators read another copy and write the good
    one back; a client sees it only when no copy was sound. Not retriable:
    the same copies would be read again."""

    code = "CorruptData"
    grpc_status = _Status("DATA_LOSS")


class InternalError(ServerError):
    code = "InternalError"


class NotImplemented(ServerError):
    """S3's NotImplemented: an S3 operation or header the HTTP API does not
    offer (yet). Refused rather than half done."""

    code = "NotImplemented"
    grpc_status = _Status("UNIMPLEMENTED")


class XAmzContentSHA256Mismatch(ClientError):
    """The body's SHA-256 (or a flexible checksum) is not the one the request declared."""

    code = "XAmzContentSHA256Mismatch"


class MissingContentLength(ClientError):
    """A PutObject or UploadPart without Content-Length (HTTP 411): neither
    chunked (``Transfer-Encoding: chunked``) nor aws-chunked with a decoded
    length (``x-amz-decoded-content-length``)."""

    code = "MissingContentLength"


class FileChanged(ClientError):
    """The SDK's own, never a server's: a file was written to while
    ``upload_file`` sent it, so its parts would not make one version of it.
    The upload is aborted; nothing is written."""

    code = "FileChanged"


def _all_subclasses(cls: type[TristoreError]) -> list[type[TristoreError]]:
    out: list[type[TristoreError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


#: Classes that narrow the case of their parent under the same S3 code (S3
#: has no code of its own for them), by class name: sent as the code plus
#: the ``tristore-error-class`` trailer, rebuilt as the refinement by
#: :func:`from_grpc` and as the code's class by anything that reads the code
#: alone (a batched item's error, the S3 HTTP API, an older client).
REFINEMENTS: dict[str, type[TristoreError]] = {c.__name__: c for c in (SSECustomerKeyRequired,)}

#: S3 error code -> exception class. The single table both directions use.
BY_CODE: dict[str, type[TristoreError]] = {
    c.code: c
    for c in _all_subclasses(TristoreError)
    if c not in (ClientError, ServerError) and c.__name__ not in REFINEMENTS
}

#: S3 error code -> HTTP status, as S3 answers each (the S3 HTTP API, node/s3/).
#: Every code of the tree has a row (tests/unit/test_errors.py checks it).
HTTP_STATUS: dict[str, int] = {
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "KeyTooLongError": 400,
    "MetadataTooLarge": 400,
    "EntityTooLarge": 400,
    "InvalidRange": 416,
    "BadDigest": 400,
    "InvalidDigest": 400,
    "IncompleteBody": 400,
    "InvalidPart": 400,
    "InvalidPartNumber": 416,
    "InvalidPartOrder": 400,
    "EntityTooSmall": 400,
    "MalformedXML": 400,
    "PreconditionFailed": 412,
    "NotModified": 304,
    "ConditionalRequestConflict": 409,
    "MethodNotAllowed": 405,
    "InvalidTag": 400,
    "InvalidStorageClass": 400,
    "InvalidRequest": 400,
    "IllegalVersioningConfigurationException": 400,
    "MalformedPOSTRequest": 400,
    "InvalidPolicyDocument": 400,
    "IncorrectNumberOfFilesInPostRequest": 400,
    "MaxPostPreDataLengthExceeded": 400,
    "InvalidLocationConstraint": 400,
    "IllegalLocationConstraintException": 400,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchVersion": 404,
    "CursorExpired": 400,
    "NoSuchUpload": 404,
    "ServerSideEncryptionConfigurationNotFoundError": 404,
    "ReplicationConfigurationNotFoundError": 404,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "RequestTimeTooSkewed": 403,
    "MalformedPolicy": 400,
    "NoSuchBucketPolicy": 404,
    "NoSuchCORSConfiguration": 404,
    "NoSuchTagSet": 404,
    "NoSuchLifecycleConfiguration": 404,
    "NoSuchWebsiteConfiguration": 404,
    "ObjectLockConfigurationNotFoundError": 404,
    "NoSuchPublicAccessBlockConfiguration": 404,
    "OwnershipControlsNotFoundError": 404,
    "AccessForbidden": 403,
    "BadRequest": 400,
    "NoSuchEntity": 404,
    "EntityAlreadyExists": 409,
    "XAmzContentSHA256Mismatch": 400,
    "MissingContentLength": 411,
    "FileChanged": 400,
    "KeyUnavailable": 500,
    "QuorumUnavailable": 503,
    "ServiceUnavailable": 503,
    "SlowDown": 503,
    "StorageFull": 507,
    "OutcomeUnknown": 409,
    "CorruptData": 500,
    "InternalError": 500,
    "NotImplemented": 501,
}


def http_status(err: TristoreError) -> int:
    """The HTTP status S3 answers ``err`` with."""
    status = HTTP_STATUS.get(err.code)
    if status is not None:
        return status
    return 500 if isinstance(err, ServerError) else 400


#: What grpc.aio reports, as INTERNAL, for a call whose connection broke (and
#: for a write to a stream the server has ended; see tristore/client/aio.py).
GRPC_CORE_ERROR = "Internal error from Core"


def broken_connection(status_name: str, details: str | None) -> bool:
    """gRPC's own mask for a connection that broke under a call (a server's
    own errors carry their code): a transport failure, outcome unknown."""
    return status_name == "INTERNAL" and details == GRPC_CORE_ERROR


# Status codes of errors that did not come from a tristore handler (transport
# failures, deadlines): how the client should read them.
# Keyed by the status's name, so that this module need not import grpc.
_TRANSPORT: dict[str, type[TristoreError]] = {
    "UNAVAILABLE": ServiceUnavailable,
    "DEADLINE_EXCEEDED": ServiceUnavailable,
    "RESOURCE_EXHAUSTED": SlowDown,
    "CANCELLED": ServiceUnavailable,
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NoSuchKey,
    "PERMISSION_DENIED": AccessDenied,
    "UNAUTHENTICATED": AccessDenied,
}


def from_code(code: str, message: str) -> TristoreError:
    """The error an S3 code names (InternalError for a code not known here): how
    one item of a batched answer is raised as its single call would have been."""
    return BY_CODE.get(code, InternalError)(message)


def as_tristore(exc: BaseException) -> TristoreError:
    """``exc`` as a client sees it: itself, or an InternalError naming it."""
    if isinstance(exc, TristoreError):
        return exc
    return InternalError(f"{type(exc).__name__}: {exc}")


def trailing_metadata(err: TristoreError) -> tuple[tuple[str, str], ...]:
    out: tuple[tuple[str, str], ...] = (
        (ERROR_CODE_KEY, err.code),
        (ERROR_RETRIABLE_KEY, "1" if err.retriable else "0"),
    )
    name = type(err).__name__
    if REFINEMENTS.get(name) is type(err):
        out += ((ERROR_CLASS_KEY, name),)
    m = err.delete_marker
    if m is not None:
        out += ((DELETE_MARKER_KEY, m.version_id), (DELETE_MARKER_MS_KEY, str(m.last_modified_ms)))
    return out


def from_grpc(
    status: grpc.StatusCode | None,
    details: str | None,
    metadata: object = None,
) -> TristoreError:
    """Rebuild the exception a server raised from a gRPC status and trailers."""
    code = refined = None
    marker_id, marker_ms = None, 0
    for item in metadata or ():  # type: ignore[attr-defined]
        key, value = item[0], item[1]
        if key == ERROR_CODE_KEY:
            code = value
        elif key == ERROR_CLASS_KEY:
            refined = REFINEMENTS.get(value)
        elif key == DELETE_MARKER_KEY:
            marker_id = value
        elif key == DELETE_MARKER_MS_KEY and value.isdigit():
            marker_ms = int(value)
    message = details or ""
    if code is not None and code in BY_CODE:
        marker = DeleteMarker(marker_id, marker_ms) if marker_id is not None else None
        # A refinement only of the code it was sent with: the code decides.
        cls = refined if refined is not None and refined.code == code else BY_CODE[code]
        return cls(message, marker)
    name = status.name if status is not None else "UNKNOWN"
    cls = _TRANSPORT.get(name, InternalError)
    if broken_connection(name, message):
        cls = ServiceUnavailable
        message = f"{message}: the connection broke under the call"
    return cls(f"{message} (gRPC {name})" if message else f"gRPC {name}")


_STATUS_BY_NUMBER: dict[object, grpc.StatusCode] = {}


def status_of_number(number: object) -> grpc.StatusCode | None:
    """The gRPC status whose wire number is ``number`` (None: no such status)."""
    if not _STATUS_BY_NUMBER:
        import grpc  # when first needed, as _Status does

        _STATUS_BY_NUMBER.update((s.value[0], s) for s in grpc.StatusCode)
    return _STATUS_BY_NUMBER.get(number)


def from_rpc_error(exc: grpc.RpcError) -> TristoreError:
    status = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else None
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    return from_grpc(status, details, trailers)
