"""The exception tree and its one mapping to gRPC, in both directions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import grpc
import pytest

from tristore import errors
from tristore.client import AsyncClient, RetryPolicy
from tristore.pb import objects_pb2_grpc
from tristore.server import SERVER_OPTIONS, Interceptor

pytestmark = pytest.mark.unit

ALL = sorted(errors.BY_CODE.values(), key=lambda c: c.code)
#: Every class a server may raise: the codes' own and the refinements of them.
EVERY = sorted([*ALL, *errors.REFINEMENTS.values()], key=lambda c: c.__name__)
RETRIABLE = {
    errors.QuorumUnavailable,
    errors.ServiceUnavailable,
    errors.SlowDown,
    # A node's disk is full: another node of its AZ takes the write.
    errors.StorageFull,
    # A conditional write that raced another: the retry is checked against the new state.
    errors.ConditionalRequestConflict,
}


def _leaves(cls: type[errors.TristoreError]) -> Iterator[type[errors.TristoreError]]:
    for sub in cls.__subclasses__():
        if sub not in (errors.ClientError, errors.ServerError):
            yield sub
        yield from _leaves(sub)


def test_by_code_holds_every_error_once() -> None:
    leaves = set(_leaves(errors.TristoreError)) - set(errors.REFINEMENTS.values())
    assert set(errors.BY_CODE.values()) == leaves
    assert len(errors.BY_CODE) == len(leaves), "two error classes share an S3 code"
    for code, cls in errors.BY_CODE.items():
        assert cls.code == code == cls.__name__


def test_a_refinement_narrows_its_codes_class() -> None:
    """A refinement keeps its parent's S3 code (what S3 and the S3 HTTP API
    answer), status and retriable flag: code that catches the parent catches it."""
    assert errors.REFINEMENTS, "none left: drop the mechanism"
    for name, cls in errors.REFINEMENTS.items():
        assert cls.__name__ == name and name not in errors.BY_CODE
        parent = errors.BY_CODE[cls.code]
        assert issubclass(cls, parent) and cls is not parent
        assert cls.grpc_status is parent.grpc_status and cls.retriable is parent.retriable
        assert errors.http_status(cls()) == errors.http_status(parent())
    assert errors.SSECustomerKeyRequired.code == "InvalidRequest"


def test_a_refinement_is_rebuilt_only_with_its_own_code() -> None:
    """Without the class trailer (an older server, a batched item's code), the
    code's class; a class trailer that names no refinement of the code sent
    (another code, an unknown name) changes nothing."""
    err = errors.SSECustomerKeyRequired("b/k is stored using SSE-C")
    trailers = errors.trailing_metadata(err)
    assert (errors.ERROR_CLASS_KEY, "SSECustomerKeyRequired") in trailers
    code_only = [t for t in trailers if t[0] != errors.ERROR_CLASS_KEY]
    plain = errors.from_grpc(err.grpc_status, err.message, code_only)
    assert type(plain) is errors.InvalidRequest
    assert type(errors.from_code(err.code, err.message)) is errors.InvalidRequest
    other = errors.trailing_metadata(errors.InvalidArgument("x"))
    for extra in ("SSECustomerKeyRequired", "NoSuchKey", "Nonsense"):
        rebuilt = errors.from_grpc(err.grpc_status, "x", [*other, (errors.ERROR_CLASS_KEY, extra)])
        assert type(rebuilt) is errors.InvalidArgument, extra
    # Only a refinement sends the trailer: its parent, the other codes, none.
    assert errors.ERROR_CLASS_KEY not in dict(errors.trailing_metadata(errors.InvalidRequest()))


def test_the_s3_errors_of_the_design_exist() -> None:
    for code in (
        "NoSuchBucket", "NoSuchKey", "BucketAlreadyExists", "BucketNotEmpty",
        "InvalidArgument", "InvalidBucketName", "KeyTooLongError", "EntityTooLarge",
        "InvalidPart", "PreconditionFailed", "AccessDenied", "QuorumUnavailable",
    ):  # fmt: skip
        assert code in errors.BY_CODE


@pytest.mark.parametrize("cls", EVERY, ids=lambda c: c.__name__)
def test_round_trip_through_trailing_metadata(cls: type[errors.TristoreError]) -> None:
    original = cls("bucket 'b': something went wrong — ünïcode")
    rebuilt = errors.from_grpc(
        cls.grpc_status, original.message, errors.trailing_metadata(original)
    )
    assert type(rebuilt) is cls
    assert rebuilt.message == original.message == str(rebuilt)
    assert rebuilt.retriable is cls.retriable


@pytest.mark.parametrize("cls", EVERY, ids=lambda c: c.__name__)
def test_round_trip_through_an_aio_rpc_error(cls: type[errors.TristoreError]) -> None:
    """The exact type the SDK catches, with grpc's own Metadata container."""
    rebuilt = errors.from_rpc_error(_aio_rpc_error(cls("details here")))
    assert type(rebuilt) is cls
    assert rebuilt.message == "details here"


def _aio_rpc_error(err: errors.TristoreError) -> grpc.aio.AioRpcError:
    """``err`` as a grpc.aio client sees it: its status, details and trailers."""
    return grpc.aio.AioRpcError(
        type(err).grpc_status,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*errors.trailing_metadata(err)),
        details=err.message,
    )


def test_a_delete_marker_crosses_the_wire_with_its_error() -> None:
    """NoSuchKey (current version a delete marker) and MethodNotAllowed (a
    marker asked for by id) carry the marker back to the SDK; others none."""
    marker = errors.DeleteMarker("0123abcd", 1_700_000_000_123)
    for cls in (errors.NoSuchKey, errors.MethodNotAllowed):
        rebuilt = errors.from_rpc_error(_aio_rpc_error(cls("gone", marker)))
        assert type(rebuilt) is cls and rebuilt.delete_marker == marker
    plain = errors.from_grpc(
        errors.NoSuchKey.grpc_status, "x", errors.trailing_metadata(errors.NoSuchKey("x"))
    )
    assert plain.delete_marker is None


def test_retriable_flags() -> None:
    for cls in ALL:
        assert cls.retriable is (cls in RETRIABLE), cls.code
        if issubclass(cls, errors.ClientError) and cls is not errors.ConditionalRequestConflict:
            assert not cls.retriable, f"{cls.code}: a wrong request never gets better by retrying"


def test_status_codes_of_well_known_errors() -> None:
    S = grpc.StatusCode
    assert errors.NoSuchKey.grpc_status is S.NOT_FOUND
    assert errors.NoSuchBucket.grpc_status is S.NOT_FOUND
    assert errors.BucketAlreadyExists.grpc_status is S.ALREADY_EXISTS
    assert errors.InvalidBucketName.grpc_status is S.INVALID_ARGUMENT
    assert errors.InvalidRange.grpc_status is S.OUT_OF_RANGE
    assert errors.AccessDenied.grpc_status is S.PERMISSION_DENIED
    assert errors.QuorumUnavailable.grpc_status is S.UNAVAILABLE
    assert errors.SlowDown.grpc_status is S.RESOURCE_EXHAUSTED
    assert errors.InternalError.grpc_status is S.INTERNAL


def test_bucket_already_owned_by_you_is_a_bucket_already_exists() -> None:
    """S3's 409 for a create of the caller's own bucket; code that catches
    BucketAlreadyExists (the CLI, benchmarks, idempotent creates) catches it."""
    err = errors.from_code("BucketAlreadyOwnedByYou", "bucket 'b' already exists")
    assert type(err) is errors.BucketAlreadyOwnedByYou
    assert isinstance(err, errors.BucketAlreadyExists)
    assert errors.BucketAlreadyOwnedByYou.grpc_status is grpc.StatusCode.ALREADY_EXISTS
    assert errors.http_status(err) == errors.http_status(errors.BucketAlreadyExists()) == 409


def test_default_message_is_the_code() -> None:
    assert str(errors.NoSuchKey()) == "NoSuchKey"
    assert errors.NoSuchKey().message == "NoSuchKey"


@pytest.mark.parametrize(
    ("status", "cls", "retriable"),
    [
        (grpc.StatusCode.UNAVAILABLE, errors.ServiceUnavailable, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.ServiceUnavailable, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.SlowDown, True),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument, False),
        (grpc.StatusCode.PERMISSION_DENIED, errors.AccessDenied, False),
        (grpc.StatusCode.UNKNOWN, errors.InternalError, False),
        (grpc.StatusCode.INTERNAL, errors.InternalError, False),
        (grpc.StatusCode.UNIMPLEMENTED, errors.InternalError, False),
        (grpc.StatusCode.DATA_LOSS, errors.InternalError, False),
        (None, errors.InternalError, False),
    ],
)
def test_transport_statuses_without_a_code(
    status: grpc.StatusCode | None, cls: type[errors.TristoreError], retriable: bool
) -> None:
    err = errors.from_grpc(status, "connection refused", None)
    assert type(err) is cls
    assert err.retriable is retriable
    assert "connection refused" in err.message
    assert (status.name if status else "UNKNOWN") in err.message


def test_grpc_core_mask_is_a_broken_connection() -> None:
    """grpc.aio's INTERNAL "Internal error from Core" with no code of a server's
    is a connection that broke under the call: retriable, outcome unknown. A
    server's own InternalError carries its code and stays one."""
    err = errors.from_grpc(grpc.StatusCode.INTERNAL, errors.GRPC_CORE_ERROR, None)
    assert type(err) is errors.ServiceUnavailable and err.retriable
    assert "connection broke" in err.message
    md = errors.trailing_metadata(errors.InternalError(errors.GRPC_CORE_ERROR))
    assert type(errors.from_grpc(grpc.StatusCode.INTERNAL, errors.GRPC_CORE_ERROR, md)) is (
        errors.InternalError
    )


def test_transport_status_without_details_names_the_status() -> None:
    assert errors.from_grpc(grpc.StatusCode.UNAVAILABLE, None, None).message == "gRPC UNAVAILABLE"


def test_unknown_s3_code_falls_back_to_the_status() -> None:
    """A newer server may send a code this client does not know."""
    md = ((errors.ERROR_CODE_KEY, "NoSuchWidget"), ("other", "x"))
    err = errors.from_grpc(grpc.StatusCode.NOT_FOUND, "widget w1", md)
    assert isinstance(err, errors.TristoreError)
    assert err.grpc_status is grpc.StatusCode.NOT_FOUND
    unavailable = errors.from_grpc(grpc.StatusCode.UNAVAILABLE, "x", md)
    assert unavailable.retriable


def test_code_beats_status() -> None:
    """The S3 code decides the class even when statuses are shared (NOT_FOUND)."""
    md = ((errors.ERROR_CODE_KEY, "NoSuchBucket"),)
    assert type(errors.from_grpc(grpc.StatusCode.NOT_FOUND, "b", md)) is errors.NoSuchBucket


class _Raiser(objects_pb2_grpc.ObjectServiceServicer):
    """HeadObject raises the error whose S3 code is the key."""

    async def HeadObject(self, request, context):
        raise errors.BY_CODE[request.key](f"raised for {request.key}")

    async def GetObject(self, request, context):
        raise errors.BY_CODE[request.key](f"raised for {request.key}")
        yield  # pragma: no cover - makes this a generator


async def _against_raiser(check: Callable[[AsyncClient], Awaitable[None]]) -> None:
    server = grpc.aio.server(interceptors=[Interceptor()], options=SERVER_OPTIONS)
    objects_pb2_grpc.add_ObjectServiceServicer_to_server(_Raiser(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with AsyncClient(f"127.0.0.1:{port}", retry=RetryPolicy(max_attempts=1)) as client:
            await check(client)
    finally:
        await server.stop(None)


def test_every_error_crosses_the_wire() -> None:
    """Servicer raises -> the one server interceptor -> gRPC -> the SDK raises
    the same class with the same message (unary and streaming calls)."""

    async def check(client: AsyncClient) -> None:
        for cls in ALL:
            with pytest.raises(cls) as info:
                await client.head_object("bucket", cls.code)
            assert type(info.value) is cls
            assert info.value.message == f"raised for {cls.code}"
            with pytest.raises(cls):
                await client.get_object("bucket", cls.code)

    asyncio.run(_against_raiser(check))


def test_unexpected_exceptions_become_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    async def check(client: AsyncClient) -> None:
        with pytest.raises(errors.InternalError, match="KeyError"):
            await client.head_object("bucket", "NotACode")

    asyncio.run(_against_raiser(check))
    assert "unhandled error in HeadObject" in caplog.text
