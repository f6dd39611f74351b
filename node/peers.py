"""The other nodes, as the coordinator sees them.

:class:`Replica` is one interface with two implementations: the local store
(called directly, no RPC) and a remote node (one gRPC channel, created once).
Protobuf stays inside :class:`RemoteReplica`. :class:`Peers` keeps every
replica and what is known of its health: a failed call marks a node down for a
short while so the next writes go to its fallback at once; a background probe
(gRPC health) brings it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.metrics import NODES_TOTAL, NODES_UP, PEER_BATCH_SIZE
from node.replica_store import CommitResult, ReplicaStore
from tristore import credentials, errors, framed
from tristore.batcher import Batcher
from tristore.config import ClusterConfig, NodeSpec
from tristore.convert import (
    change_to_pb,
    scrub_report_from_pb,
    stamp_from_pb,
    stamp_to_pb,
    version_from_pb,
)
from tristore.model import Change, ObjectVersion, ScrubReport
from tristore.pb import admin_pb2, admin_pb2_grpc, objects_pb2, replica_pb2, replica_pb2_grpc
from tristore.pipe import PipeBroken, PipeClient
from tristore.server import cluster_channel, peer_pipe
from tristore.stamps import Stamp
from tristore.wakeup import wait_for_any

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: A relayed door call unanswered for this many ``replica_timeout_s`` breaks
#: its stream (node/relay.py).
RELAY_TIMEOUTS = 2


#: Makes the channel to the process whose gRPC address is given. A node's is
#: :func:`tristore.server.cluster_channel` (mutual TLS to its internal port);
#: the deterministic simulation (tests/sim/) passes one that delivers in memory.
ChannelFactory = Callable[[str], grpc.aio.Channel]


class ReplicaUnavailable(Exception):
    """A replica could not be reached or did not answer in time."""


class Replica(Protocol):
    spec: NodeSpec

    async def commit(self, change: Change, hint_for: str = "") -> CommitResult: ...

    async def stage(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> None: ...

    async def mend(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> int: ...

    async def read_meta(
        self, bucket: str, key: str, include_inline: bool
    ) -> ObjectVersion | None: ...

    def read_data(
        self, data_id: bytes, chunk_size: int, offset: int, length: int
    ) -> AsyncIterator[bytes]: ...

    async def scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]: ...

    async def read_versions(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None = None,
        null: bool = False,
        limit: int = 1,
        include_inline: bool = False,
    ) -> tuple[list[ObjectVersion], bool]: ...

    async def scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]: ...


class LocalReplica:
    def __init__(self, spec: NodeSpec, store: ReplicaStore) -> None:
        self.spec = spec
        self.store = store

    async def commit(self, change: Change, hint_for: str = "") -> CommitResult:
        # The message the other AZs' nodes are sent (converted once): stored
        # from it here too, as they store it.
        return await self.store.commit(change, hint_for, _encoded(change))

    async def stage(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> None:
        await self.store.stage(data_id, chunks)

    async def mend(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> int:
        return await self.store.mend(data_id, chunks)

    async def read_meta(self, bucket: str, key: str, include_inline: bool) -> ObjectVersion | None:
        return await self.store.read_meta(bucket, key)

    async def read_data(
        self, data_id: bytes, chunk_size: int, offset: int, length: int
    ) -> AsyncIterator[bytes]:
        async for piece in self.store.read_data(data_id, chunk_size, offset, length):
            yield piece

    async def scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        try:
            return await self.store.scan(bucket, prefix, start_after, skip_prefix, limit)
        except errors.CorruptData as exc:
            raise _named(self.spec, exc) from None

    async def read_versions(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None = None,
        null: bool = False,
        limit: int = 1,
        include_inline: bool = False,
    ) -> tuple[list[ObjectVersion], bool]:
        return await self.store.read_versions(bucket, key, vstamp, null, limit)

    async def scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        try:
            return await self.store.scan_versions(bucket, prefix, key_marker, after, limit)
        except errors.CorruptData as exc:
            raise _named(self.spec, exc) from None


def _named(spec: NodeSpec, exc: errors.CorruptData) -> errors.CorruptData:
    """A damaged value's error naming its node (``node NAME: ...``): a listing
    then scans around that node."""
    return errors.CorruptData(f"node {spec.name}: {exc}")


def _unavailable(spec: NodeSpec, exc: grpc.aio.AioRpcError) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.DATA_LOSS:
        err = errors.from_rpc_error(exc)
        if isinstance(err, errors.CorruptData):
            return _named(spec, err)
    if errors.broken_connection(code.name, exc.details()) or code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    ):
        # (a broken connection: the node died mid-stream, say)
        return ReplicaUnavailable(f"node {spec.name} ({spec.az}): {code.name} {exc.details()}")
    return errors.from_rpc_error(exc)


#: The last change converted to a message, and the message: one change goes to
#: the nodes of three AZs in one event-loop turn, and is converted once (this
#: node's own store takes it too). Never changed once made: callers copy it.
_last_encoded: tuple[Change, replica_pb2.CommitRequest] | None = None


def _encoded(change: Change) -> replica_pb2.CommitRequest:
    global _last_encoded
    if _last_encoded is None or _last_encoded[0] is not change:
        _last_encoded = (change, change_to_pb(change))
    return _last_encoded[1]


class RemoteReplica:
    def __init__(
        self, spec: NodeSpec, config: ClusterConfig, me: str, channel: ChannelFactory | None = None
    ) -> None:
        cfg = config.node
        self.spec = spec
        self.timeout_s = cfg.replica_timeout_s
        self.stream_timeout_s = cfg.stream_timeout_s
        # The peer's internal port, mutual TLS with this node's certificate.
        self.channel = (
            channel(spec.grpc) if channel is not None else cluster_channel(config, me, spec.grpc)
        )
        self.stub = replica_pb2_grpc.ReplicaServiceStub(self.channel)
        self.admin = credentials.SignedStub(
            admin_pb2_grpc.AdminServiceStub(self.channel),
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
            credentials.process_signer(),
        )
        self.health = health_pb2_grpc.HealthStub(self.channel)
        # Commits, metadata reads and version reads go on one long-lived stream
        # to the peer's pipe port, and those of concurrent requests share one
        # message (tristore/pipe.py).
        opener = peer_pipe(
            config,
            me,
            spec.grpc,
            framed.REPLICA_PIPE,
            replica_pb2.PipeResponse.FromString,
            self.stub.Pipe,
            simulated=channel is not None,
        )
        self._pipe: PipeClient[replica_pb2.PipeRequest, replica_pb2.PipeResponse] = PipeClient(
            opener, self.timeout_s, spec.name
        )
        # Commits and reads queue apart, each with its own messages in flight:
        # a node deciding a conditional commit reads the other nodes of its AZ
        # first (ReplicaStore.hear_az), so a read queued behind commits that
        # wait, at the peer, on reads queued behind this node's commits to it
        # would wait for them in a circle (until the read's deadline). Reads
        # wait on nothing, so their messages always go out and come back.
        self._commits: Batcher[replica_pb2.BatchOp, replica_pb2.BatchResult] = Batcher(
            self._send_batch,
            cfg.replica_max_batch,
            cfg.replica_max_inflight,
            PEER_BATCH_SIZE.labels("node"),
        )
        # Door calls relayed to this peer (node/relay.py) go on a stream of
        # their own, one call a message (a slow one holds up no other; the
        # messages of a turn still leave in one write). A call may take its
        # coordinator a failover or two (each up to replica_timeout_s); a
        # stream with a call unanswered for longer is taken for a peer that
        # hangs (its connection open, its process stopped), and broken.
        self._relays: PipeClient[replica_pb2.PipeRequest, replica_pb2.PipeResponse] = PipeClient(
            opener, RELAY_TIMEOUTS * self.timeout_s, spec.name
        )
        self._reads: Batcher[replica_pb2.BatchOp, replica_pb2.BatchResult] = Batcher(
            self._send_batch,
            cfg.replica_max_batch,
            cfg.replica_max_inflight,
            PEER_BATCH_SIZE.labels("node"),
        )

    async def _send_batch(
        self,
        ops: list[replica_pb2.BatchOp],
        pipe: PipeClient[replica_pb2.PipeRequest, replica_pb2.PipeResponse] | None = None,
    ) -> list[replica_pb2.BatchResult | BaseException]:
        try:
            resp = await (pipe or self._pipe).call(replica_pb2.PipeRequest(ops=ops))
        except PipeBroken as exc:
            raise ReplicaUnavailable(f"node {self.spec.name} ({self.spec.az}): {exc}") from None
        if len(resp.results) != len(ops):
            raise ReplicaUnavailable(
                f"node {self.spec.name} answered {len(resp.results)} results for {len(ops)} ops"
            )
        return [
            self._failed(r.error) if r.WhichOneof("result") == "error" else r for r in resp.results
        ]

    def _failed(self, error: replica_pb2.BatchError) -> errors.TristoreError:
        err = errors.from_code(error.code, error.message)
        return _named(self.spec, err) if isinstance(err, errors.CorruptData) else err

    async def commit(self, change: Change, hint_for: str = "") -> CommitResult:
        op = replica_pb2.BatchOp(commit=_encoded(change))
        if hint_for:
            op.commit.hint_for = hint_for
        resp = (await self._commits.submit(op)).commit
        return CommitResult(
            resp.applied,
            stamp_from_pb(resp.current),
            resp.conflict,
            resp.older_above,
            resp.newer_version,
            resp.below_condition,
        )

    async def relay(self, call: objects_pb2.DoorCall, caller: str) -> objects_pb2.DoorAnswer:
        """``call``'s answer from this peer's door handlers (node/relay.py);
        ReplicaUnavailable when the stream broke (the call may have run)."""
        op = replica_pb2.BatchOp(relay=replica_pb2.RelayedCall(call=call, caller=caller))
        (result,) = await self._send_batch([op], self._relays)
        if isinstance(result, BaseException):
            raise result
        return result.relay

    async def read_versions(
        self,
        bucket: str,
        key: str,
        vstamp: Stamp | None = None,
        null: bool = False,
        limit: int = 1,
        include_inline: bool = False,
    ) -> tuple[list[ObjectVersion], bool]:
        req = replica_pb2.ReadVersionsRequest(
            bucket=bucket, key=key, null_version=null, limit=limit, include_inline=include_inline
        )
        if vstamp is not None:
            req.version_stamp.CopyFrom(stamp_to_pb(vstamp))
            req.has_version_stamp = True
        # On the pipe, with the metadata reads of the moment (commits queue apart).
        resp = (await self._reads.submit(replica_pb2.BatchOp(read_versions=req))).read_versions
        return [version_from_pb(v) for v in resp.versions], resp.removed

    async def scan_versions(
        self, bucket: str, prefix: str, key_marker: str, after: Stamp | None, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        req = replica_pb2.ScanVersionsRequest(
            bucket=bucket, prefix=prefix, key_marker=key_marker, limit=limit
        )
        if after is not None:
            req.after_version.CopyFrom(stamp_to_pb(after))
            req.has_after_version = True
        try:
            resp = await self.stub.ScanVersions(req, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None
        return [version_from_pb(v) for v in resp.versions], resp.exhausted

    async def stage(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> None:
        # No overall deadline: a large body takes as long as it takes. Each
        # chunk the peer must take within stream_timeout_s (flow control holds
        # a write a frozen peer does not read); a dead peer the channel's
        # keepalive catches too.
        call = self.stub.Stage()
        try:
            try:
                async for index, data in chunks:
                    req = replica_pb2.StageRequest(data_id=data_id, index=index, data=data)
                    await self._within(call.write(req), "took no data")
                await self._within(call.done_writing(), "took no data")
            except asyncio.InvalidStateError:
                # The call ended before the body was all sent: the peer refused
                # it (a full disk) or its connection broke. grpc.aio says only
                # "RPC already finished"; the call's status says why.
                await self._within(call, "did not answer")
                raise ReplicaUnavailable(
                    f"node {self.spec.name} ({self.spec.az}) ended the stage of a body "
                    "before it was all sent"
                ) from None
            await self._within(call, "did not answer")
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None
        finally:
            call.cancel()

    async def mend(self, data_id: bytes, chunks: AsyncIterator[tuple[int, bytes]]) -> int:
        async def requests() -> AsyncIterator[replica_pb2.StageRequest]:
            async for index, data in chunks:
                yield replica_pb2.StageRequest(data_id=data_id, index=index, data=data, mend=True)

        try:
            resp = await self.stub.Stage(requests(), timeout=self.timeout_s * 4)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None
        return int(resp.mended)

    async def read_meta(self, bucket: str, key: str, include_inline: bool) -> ObjectVersion | None:
        req = replica_pb2.ReadMetaRequest(bucket=bucket, key=key, include_inline=include_inline)
        resp = (await self._reads.submit(replica_pb2.BatchOp(read_meta=req))).read_meta
        return version_from_pb(resp.version) if resp.found else None

    async def read_data(
        self, data_id: bytes, chunk_size: int, offset: int, length: int
    ) -> AsyncIterator[bytes]:
        call = self.stub.ReadData(
            replica_pb2.ReadDataRequest(
                data_id=data_id, chunk_size=chunk_size, offset=offset, length=length
            )
        )
        try:
            while True:
                resp = await self._within(call.read(), "sent no data")
                if resp is grpc.aio.EOF:
                    return
                yield resp.data
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # the peer does not hold it
                raise LookupError(f"node {self.spec.name}: {exc.details()}") from None
            raise _unavailable(self.spec, exc) from None
        finally:
            call.cancel()

    async def _within(self, step: Awaitable[_T], what: str) -> _T:
        """One step of a body stream, given ``stream_timeout_s``: a peer that
        is frozen (not dead: the connection stays up) is given up as unavailable."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
        # cancellation that arrives as its step completes, and a stage stream
        # whose writer gave up then waited for its next chunk for ever (logged
        # as "Task was destroyed but it is pending!", its call left open).
        try:
            async with asyncio.timeout(self.stream_timeout_s):
                return await step
        except TimeoutError:
            raise ReplicaUnavailable(
                f"node {self.spec.name} ({self.spec.az}): {what} for {self.stream_timeout_s:g} s"
            ) from None

    async def scan(
        self, bucket: str, prefix: str, start_after: str, skip_prefix: bool, limit: int
    ) -> tuple[list[ObjectVersion], bool]:
        try:
            resp = await self.stub.Scan(
                replica_pb2.ScanRequest(
                    bucket=bucket,
                    prefix=prefix,
                    start_after=start_after,
                    skip_prefix=skip_prefix,
                    limit=limit,
                ),
                timeout=self.timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None
        return [version_from_pb(v) for v in resp.versions], resp.exhausted

    async def scrub(self, bucket: str) -> AsyncIterator[ScrubReport]:
        """The node's own scrub (AdminService.Scrub, node_only), its reports."""
        call = self.admin.Scrub(admin_pb2.ScrubRequest(bucket=bucket, node_only=True))
        try:
            async for msg in call:
                yield scrub_report_from_pb(msg)
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None
        finally:
            call.cancel()

    async def node_status(self) -> admin_pb2.NodeStatusResponse:
        try:
            return await self.admin.NodeStatus(
                admin_pb2.NodeStatusRequest(), timeout=self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None

    async def get_map(
        self,
        known_epoch: int,
        timeout_s: float,
        known_digest: str = "",
        from_node: str = "",
        handoffs_pending: int = 0,
    ) -> admin_pb2.ClusterMapResponse:
        try:
            return await self.admin.GetClusterMap(
                admin_pb2.GetClusterMapRequest(
                    known_epoch=known_epoch,
                    known_digest=known_digest,
                    from_node=from_node,
                    handoffs_pending=handoffs_pending,
                ),
                timeout=timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None

    async def put_map(self, m: admin_pb2.ClusterMap) -> admin_pb2.ClusterMapResponse:
        try:
            return await self.admin.PutClusterMap(
                admin_pb2.PutClusterMapRequest(map=m), timeout=self.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.spec, exc) from None

    def connected(self) -> bool:
        """Whether the channel holds an open connection (no RPC: a peer that
        dies closes it, and the channel leaves READY at once)."""
        return self.channel.get_state(try_to_connect=False) == grpc.ChannelConnectivity.READY

    async def watch_state(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` each time the channel's connection state changes,
        until the channel is closed (gRPC's own watch: no polling)."""
        state = self.channel.get_state(try_to_connect=False)
        try:
            while state != grpc.ChannelConnectivity.SHUTDOWN:
                await self.channel.wait_for_state_change(state)
                state = self.channel.get_state(try_to_connect=False)
                changed()
        except Exception as exc:  # noqa: BLE001 - a closed channel; the probe goes on
            log.debug("watching the channel to %s ended: %s", self.spec.name, exc)

    async def healthy(self, timeout_s: float) -> bool:
        try:
            resp = await self.health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._pipe.close()
        await self._relays.close()
        await self.channel.close()


class Peers:
    def __init__(
        self,
        cfg: ClusterConfig,
        me: NodeSpec,
        store: ReplicaStore,
        channel: ChannelFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``channel`` and ``clock`` (what peer health is timed by) are seams
        for the deterministic simulation (tests/sim/); a node takes the defaults."""
        self.cfg = cfg
        self.me = me
        self._channel = channel
        self._clock = clock
        self.local = LocalReplica(me, store)
        self.nodes: tuple[NodeSpec, ...] = ()
        self.remote: dict[str, RemoteReplica] = {}
        self._down_until: dict[str, float] = {}
        self._full_until: dict[str, float] = {}
        # Optimistic at start: a failed call or the first probe corrects it.
        self._probe_up: dict[str, bool] = {}
        self._probed_at: dict[str, float] = {}
        self._closing: list[RemoteReplica] = []
        #: Set when a probe may be due before the idle one: a peer marked
        #: down, a connection that changed state, a new map.
        self._wake = asyncio.Event()
        #: Set when a peer comes up or goes down (what the map comparison
        #: loop waits on, node/membership.py); whoever waits clears it.
        self.changed = asyncio.Event()
        #: Peer -> (the replica watched, the task watching its channel).
        self._watches: dict[str, tuple[RemoteReplica, asyncio.Task[None]]] = {}
        self.update(cfg.nodes)

    def update(self, nodes: tuple[NodeSpec, ...]) -> None:
        """Talk to the nodes of a new cluster map."""
        self.nodes = nodes
        names = {n.name for n in nodes}
        for n in nodes:
            held = self.remote.get(n.name)
            if n.name != self.me.name and (held is None or held.spec.grpc != n.grpc):
                if held is not None:
                    self._closing.append(held)
                self.remote[n.name] = RemoteReplica(n, self.cfg, self.me.name, self._channel)
                self._probe_up.setdefault(n.name, True)
            elif held is not None:
                held.spec = n  # its state may have changed
        for name in [name for name in self.remote if name not in names]:
            self._closing.append(self.remote.pop(name))
            self._probe_up.pop(name, None)
            self._probed_at.pop(name, None)
        for az in {n.az for n in nodes}:
            NODES_TOTAL.labels(az).set(sum(1 for n in nodes if n.az == az))
        self._wake.set()

    def replica(self, spec: NodeSpec) -> Replica:
        if spec.name == self.me.name:
            return self.local
        held = self.remote.get(spec.name)
        if held is None:  # placed by a map this node has just left behind
            held = self.remote[spec.name] = RemoteReplica(
                spec, self.cfg, self.me.name, self._channel
            )
        return held

    def replica_for_map(self, spec: NodeSpec) -> RemoteReplica:
        """A stub for ``spec`` even when it left the map (to tell it so)."""
        held = self.remote.get(spec.name)
        if held is None:
            held = RemoteReplica(spec, self.cfg, self.me.name, self._channel)
            self._closing.append(held)
        return held

    def is_up(self, name: str) -> bool:
        if name == self.me.name:
            return True
        return self._probe_up.get(name, False) and self._clock() >= self._down_until.get(name, 0.0)

    def is_full(self, name: str) -> bool:
        """Whether ``name`` refused new data for lack of disk space lately."""
        until = self._full_until.get(name)
        return until is not None and self._clock() < until

    def mark_full(self, name: str, why: str) -> None:
        """``name`` answered StorageFull: new data goes to another node of its
        AZ for a while (reads still go to it)."""
        if not self.is_full(name):
            log.warning("node %s refuses new data: %s", name, why)
        self._full_until[name] = self._clock() + self.cfg.node.peer_down_s

    def mark_down(self, name: str, why: str) -> None:
        if name == self.me.name:
            return
        if self.is_up(name):
            log.warning("node %s marked down: %s", name, why)
            self.changed.set()
        self._down_until[name] = self._clock() + self.cfg.node.peer_down_s
        self._wake.set()

    def _probe_due(self, name: str, now: float) -> bool:
        """A peer is probed every ``probe_interval_s`` while it is down, marked
        down or its connection is not open; one that is up over an open
        connection only once it was not heard from (a probe, or a map
        comparison either way: :meth:`heard_from`) for
        ``probe_idle_interval_s`` (its death closes the connection, which the
        next round sees without an RPC)."""
        if not self._probe_up.get(name, False) or name in self._down_until:
            return True
        if not self.remote[name].connected():
            return True
        since = now - self._probed_at.get(name, float("-inf"))
        return since >= self.cfg.node.probe_idle_interval_s

    def heard_from(self, name: str) -> None:
        """``name`` answered a call or made one here just now: its server is
        serving, which is what a probe would learn. An idle cluster's map
        comparisons (node/membership.py) so stand in for its probes, which
        were half of its RPCs. Only a peer already up counts: bringing one
        back is the probe's job (it logs it and clears a mark)."""
        if self._probe_up.get(name, False) and name not in self._down_until:
            self._probed_at[name] = self._clock()

    async def probe_once(self) -> None:
        now = self._clock()
        names = [n for n in self.remote if self._probe_due(n, now)]
        timeout = max(0.2, self.cfg.node.probe_interval_s)
        # A peer never probed yet gets the replica timeout: its first probe
        # also connects (and shakes hands), which on a busy machine takes
        # longer than a probe interval; taking it for down would send this
        # node's first writes to its AZ's other node as hints for nothing. A
        # peer that is not listening still fails at once (refused), and each
        # answer counts as it comes: one slow peer holds up no other's.

        async def probe(name: str) -> tuple[str, bool]:
            first = name not in self._probed_at
            wait = max(timeout, self.cfg.node.replica_timeout_s) if first else timeout
            return name, await self.remote[name].healthy(wait)

        for done in asyncio.as_completed([probe(n) for n in names]):
            name, ok = await done
            if name not in self.remote:  # left the map meanwhile
                continue
            was = self._probe_up.get(name)
            self._probe_up[name] = ok
            self._probed_at[name] = now
            if ok and self._down_until.pop(name, None) is not None:
                self.changed.set()
            if was != ok:
                log.info("node %s is %s", name, "up" if ok else "down")
                self.changed.set()
        for az in {n.az for n in self.nodes}:
            NODES_UP.labels(az).set(sum(1 for n in self.nodes if n.az == az and self.is_up(n.name)))

    async def wait_for_peers(self, log_every_s: float = 5.0, say: bool = True) -> None:
        """At start, say plainly which AZs have no reachable node yet, until
        each has one (a write needs all three of a key's AZs)."""
        last_said = float("-inf")
        while True:
            await asyncio.sleep(self.cfg.node.probe_interval_s)
            azs = sorted({n.az for n in self.nodes})
            lacking = [
                az for az in azs if not any(self.is_up(n.name) for n in self.nodes if n.az == az)
            ]
            up = sum(1 for n in self.nodes if self.is_up(n.name))
            if not lacking:
                if not say:
                    return
                log.info(
                    "peers reachable: every AZ has a node up (%d of %d nodes)", up, len(self.nodes)
                )
                return
            if say and self._clock() - last_said >= log_every_s:
                last_said = self._clock()
                log.warning(
                    "waiting for peers: no node of %s answers (%d of %d nodes up: %s); "
                    "requests that need those AZs fail with ServiceUnavailable until one "
                    "does (probing every %.1fs)",
                    ", ".join(lacking),
                    up,
                    len(self.nodes),
                    ", ".join(f"{n.name} {n.grpc}" for n in self.nodes if n.az in lacking),
                    self.cfg.node.probe_interval_s,
                )

    async def probe_forever(self) -> None:
        try:
            while True:
                try:
                    await self.probe_once()
                except Exception:
                    log.exception("peer probe failed")
                await self._until_probe_due()
        finally:
            for _, task in self._watches.values():
                task.cancel()

    def _quiet(self, name: str) -> bool:
        """Up over an open connection, not marked down: probed only when idle."""
        return (
            self._probe_up.get(name, False)
            and name not in self._down_until
            and self.remote[name].connected()
        )

    async def _until_probe_due(self) -> None:
        """Sleep ``probe_interval_s`` while a peer is down, marked down or not
        connected. While every peer is quiet, sleep until the first idle probe
        is due, or until something makes one due sooner (:attr:`_wake`: a
        connection changing state, a peer marked down, a new map): an idle
        node does not look at its peers twice a second."""
        self._watch_channels()
        step = self.cfg.node.probe_interval_s
        self._wake.clear()
        if not all(self._quiet(n) for n in self.remote):
            await asyncio.sleep(step)
            return
        now = self._clock()
        idle = self.cfg.node.probe_idle_interval_s
        never = float("-inf")
        due = min((self._probed_at.get(n, never) + idle for n in self.remote), default=now + idle)
        await wait_for_any([self._wake], max(step, due - now))

    def _watch_channels(self) -> None:
        """One watch a peer's channel, started (and ended) as the map changes."""
        for name in [n for n, (r, _) in self._watches.items() if self.remote.get(n) is not r]:
            self._watches.pop(name)[1].cancel()
        for name, r in self.remote.items():
            if name not in self._watches:
                task = asyncio.create_task(r.watch_state(self._wake.set))
                self._watches[name] = (r, task)

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in [*self.remote.values(), *self._closing]))
