"""gRPC servicer of the witness: decode, call the table, encode."""

from __future__ import annotations

import time
from typing import TypeAlias

import grpc

from tristore.config import WitnessSpec
from tristore.errors import InvalidArgument
from tristore.pb import witness_pb2, witness_pb2_grpc
from witness.metrics import CHECKS, EVICTIONS, KEYS, RECORDS, REFUSED, UNKNOWN
from witness.table import WitnessTable

Ctx: TypeAlias = grpc.aio.ServicerContext


class WitnessServicer(witness_pb2_grpc.WitnessServiceServicer):
    def __init__(self, spec: WitnessSpec, table: WitnessTable) -> None:
        self.spec = spec
        self.table = table
        self.started = time.monotonic()

    async def Record(
        self, request: witness_pb2.RecordRequest, context: Ctx
    ) -> witness_pb2.RecordResponse:
        keys = list(request.keys)
        try:
            refused, evicted = self.table.record(keys, request.stamps, list(request.incarnations))
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        RECORDS.inc(len(keys) - len(refused))
        if refused:
            REFUSED.inc(len(refused))
        if evicted:
            EVICTIONS.inc(evicted)
        KEYS.set(len(self.table))
        return witness_pb2.RecordResponse(incarnation=self.table.incarnation, refused=refused)

    async def Check(
        self, request: witness_pb2.CheckRequest, context: Ctx
    ) -> witness_pb2.CheckResponse:
        keys = list(request.keys)
        stamps, unknown = self.table.check(keys)
        CHECKS.inc(len(keys))
        if unknown:
            UNKNOWN.inc(unknown)
        return witness_pb2.CheckResponse(stamps=stamps, incarnation=self.table.incarnation)

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
