"""gRPC servicer of the witness: decode, call the table, encode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from tristore import framed, pipe
from tristore.config import WitnessSpec
from tristore.errors import InvalidArgument, TristoreError
from tristore.pb import witness_pb2, witness_pb2_grpc
from tristore.stamps import ENCODED_SIZE, check_skew
from witness.metrics import (
    BELOW_FLOOR,
    CHECKS,
    EVICTIONS,
    FORGOTTEN,
    KEYS,
    RECORDS,
    REFUSED,
    UNKNOWN,
)
from witness.table import WitnessTable

Ctx: TypeAlias = grpc.aio.ServicerContext


class WitnessServicer(witness_pb2_grpc.WitnessServiceServicer):
    def __init__(
        self, spec: WitnessSpec, table: WitnessTable, max_skew_ms: int | None = None
    ) -> None:
        self.spec = spec
        self.table = table
        #: Stamps further ahead of this witness's clock are refused (None: no bound).
        self.max_skew_ms = max_skew_ms
        self.started = time.monotonic()

    async def Record(
        self, request: witness_pb2.RecordRequest, context: Ctx
    ) -> witness_pb2.RecordResponse:
        return self._record(request)

    async def Check(
        self, request: witness_pb2.CheckRequest, context: Ctx
    ) -> witness_pb2.CheckResponse:
        return self._check(request)

    async def Pipe(
        self, request_iterator: AsyncIterator[witness_pb2.WitnessPipeRequest], context: Ctx
    ) -> AsyncIterator[witness_pb2.WitnessPipeResponse]:
        # The table answers at once: each request is answered in turn, no task each.
        with pipe.ends_on_close():
            async for req in request_iterator:
                yield self.answer(req)

    def pipe_service(self) -> framed.PipeService[Any, Any]:
        """The pipe on the pipe port (tristore/framed.py): the same messages as :meth:`Pipe`."""
        return framed.PipeService(
            framed.WITNESS_PIPE, witness_pb2.WitnessPipeRequest.FromString, self.answer
        )

    def answer(self, req: witness_pb2.WitnessPipeRequest) -> witness_pb2.WitnessPipeResponse:
        try:
            # Records first: a check in the same message then sees them.
            record = self._record(req.record) if req.HasField("record") else None
            check = self._check(req.check) if req.HasField("check") else None
        except TristoreError as exc:
            return witness_pb2.WitnessPipeResponse(
                id=req.id, error_code=exc.code, error_message=exc.message
            )
        return witness_pb2.WitnessPipeResponse(id=req.id, record=record, check=check)

    def _check_skew(self, stamps: bytes) -> None:
        """A stamp far ahead of this clock would make every reader of its key,
        and the next writer's clock, jump into the future: refuse the record."""
        if self.max_skew_ms is None or len(stamps) % ENCODED_SIZE:
            return  # wrong lengths are the table's to refuse
        newest = max((stamps[i : i + 8] for i in range(0, len(stamps), ENCODED_SIZE)), default=b"")
        if newest:
            check_skew(
                int.from_bytes(newest, "big"),
                time.time_ns() // 1_000_000,
                self.max_skew_ms,
                f"witness {self.spec.name}'s",
            )

    def _record(self, request: witness_pb2.RecordRequest) -> witness_pb2.RecordResponse:
        keys = list(request.keys)
        self._check_skew(request.stamps)
        try:
            refused, evicted, below = self.table.record(
                keys, request.stamps, list(request.incarnations)
            )
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        RECORDS.inc(len(keys) - len(refused) - below)
        if refused:
            REFUSED.inc(len(refused))
        if evicted:
            EVICTIONS.inc(evicted)
        if below:
            BELOW_FLOOR.inc(below)
        KEYS.set(len(self.table))
        return witness_pb2.RecordResponse(incarnation=self.table.incarnation, refused=refused)

    def _check(self, request: witness_pb2.CheckRequest) -> witness_pb2.CheckResponse:
        keys = list(request.keys)
        stamps, unknown = self.table.check(keys)
        CHECKS.inc(len(keys))
        if unknown:
            UNKNOWN.inc(unknown)
        return witness_pb2.CheckResponse(stamps=stamps, incarnation=self.table.incarnation)

    async def Forget(
        self, request: witness_pb2.ForgetRequest, context: Ctx
    ) -> witness_pb2.ForgetResponse:
        keys = list(request.keys)
        try:
            newer = self.table.forget(keys, request.stamps)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        FORGOTTEN.inc(len(keys) - len(newer))
        KEYS.set(len(self.table))
        return witness_pb2.ForgetResponse(newer=newer, incarnation=self.table.incarnation)

    async def Status(
        self, request: witness_pb2.WitnessStatusRequest, context: Ctx
    ) -> witness_pb2.WitnessStatusResponse:
        return witness_pb2.WitnessStatusResponse(
            name=self.spec.name,
            group=self.spec.group,
            incarnation=self.table.incarnation,
            keys=len(self.table),
            max_keys=self.table.max_keys,
            uptime_seconds=time.monotonic() - self.started,
        )
