"""Small writes coordinated by a few nodes (``[node] write_coordinators``).

A write's cost on the cluster is mostly messages: its floor check, its commit
in three AZs and its record each cost a message to every peer involved, and
concurrent writes that one node coordinates share those messages. Spread over
every node, as clients spread, each node's writes share them with few others;
measured on the two-core machine of ``bench/`` (six nodes, three witnesses,
the client), 64 clients on one node cost the cluster about half the CPU a
write that 64 clients spread over six nodes cost. So with
``write_coordinators = N`` the first N nodes of the map (an AZ at a time, by
name) coordinate every small write: any other node hands the door calls
PutSmallObject and DeleteObject (:data:`tristore.door.WRITES`, bodies up to
``inline_max``) to one of them, in turn, on its pipe
(:class:`node.peers.RemoteReplica.relay`),
and passes the answer back. The coordinator runs the call through its own
door's handlers with the client's address, so the signature check, the
policy (``aws:SourceIp`` included), the protocol and the answer are what they
would be had the client called it; only nodes may relay (the pipe port's
mutual TLS). The answer names the coordinator (the :data:`tristore.door.WRITE_HINT`
trailer), and the SDK sends the client's next small writes to that node's
door itself, saving the hop (tristore/client/_door.py); other clients keep
being relayed.

A coordinator this node takes for down (or draining) is skipped; with none
left, the node coordinates the call itself, as it does a call the coordinator
refuses unrun (a node of a version without relays, or serving no door). When
the stream to a coordinator breaks with a call on it, or leaves a call
unanswered for twice ``replica_timeout_s`` (a coordinator whose process
hangs), the call may have run there: the client is answered UNAVAILABLE
(outcome unknown), and the SDK's retry resends it as a resend, which finds a
write that did happen (docs/architecture.md, "Retries tell the truth too").
A call that reaches its deadline is answered DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import grpc

from node.metrics import RELAYED_CALLS
from node.peers import Peers, RemoteReplica, ReplicaUnavailable
from tristore.config import ACTIVE, NodeSpec
from tristore.door import WRITE_HINT, WRITES, Door
from tristore.errors import InvalidArgument, TristoreError
from tristore.pb import objects_pb2
from tristore.placement import Placer

#: Room for a relayed PutSmallObject's header and metadata beside its body.
_HEADER_ROOM = 16 << 10
#: How long after a relayed call's deadline this node still waits for its answer.
_ANSWER_SLACK_S = 1.0


def coordinators(placer: Placer, count: int) -> list[NodeSpec]:
    """The write coordinators: the first ``count`` active nodes of the map
    taken an AZ at a time (each AZ's first node by name, then each AZ's
    second...), so that they are spread over the AZs."""
    by_az = [
        sorted((n for n in placer.nodes_in(az) if n.state == ACTIVE), key=lambda n: n.name)
        for az in placer.azs
    ]
    rounds = max((len(nodes) for nodes in by_az), default=0)
    order = [nodes[i] for i in range(rounds) for nodes in by_az if i < len(nodes)]
    return order[:count]


class WriteRelay:
    """The :class:`tristore.door.Relay` of a node."""

    def __init__(self, placer: Placer, peers: Peers, me: NodeSpec, count: int, inline_max: int):
        self.placer = placer
        self.peers = peers
        self.me = me
        self.count = count
        self.max_request = inline_max + _HEADER_ROOM
        #: What this node relays: nothing when no node coordinates writes.
        self.methods = WRITES if count > 0 else frozenset()
        #: Set by the door when it opens: runs the calls relayed here.
        self.door: Door | None = None
        self._epoch = -1
        self._chosen: list[NodeSpec] = []
        self._turn = itertools.count()
        #: Small writes this node's door is answering now.
        self._writes = 0

    def _coordinators(self) -> list[NodeSpec]:
        """The coordinators of the map's epoch; empty when this node is one
        (a coordinator runs what it takes)."""
        if self.placer.epoch != self._epoch:
            chosen = coordinators(self.placer, self.count)
            coordinating = any(n.name == self.me.name for n in chosen)
            self._chosen = [] if coordinating else chosen
            self._epoch = self.placer.epoch
        return self._chosen

    def target(self, call: objects_pb2.DoorCall) -> RemoteReplica | None:
        """The coordinator to hand ``call`` to; None: run it here."""
        if len(call.request) > self.max_request:
            return None
        chosen = self._coordinators()
        if not chosen:
            return None
        live = [n for n in chosen if self.peers.is_up(n.name)]
        if not live:
            return None
        replica = self.peers.replica(live[next(self._turn) % len(live)])
        return replica if isinstance(replica, RemoteReplica) else None

    async def __call__(
        self,
        call: objects_pb2.DoorCall,
        caller: str,
        here: Callable[[], Awaitable[objects_pb2.DoorAnswer]],
    ) -> objects_pb2.DoorAnswer:
        # The door hands over only the calls of :attr:`methods`. A write
        # alone on this node runs here: nothing would share the coordinator's
        # messages with it, and the hop would only add to it.
        self._writes += 1
        try:
            peer = self.target(call)
            if peer is not None and self._writes > 1:
                answer = await self._relay(peer, call, caller)
                if answer is not None:
                    return answer
                peer = None  # it refused the call unrun: no client is sent there
            answer = await here()
            if peer is not None:
                # Run here, alone; the client's next writes may go to the
                # coordinator all the same (they may not be alone).
                answer.trailers.add(key=WRITE_HINT, value=peer.spec.grpc)
            return answer
        finally:
            self._writes -= 1

    async def _relay(
        self, peer: RemoteReplica, call: objects_pb2.DoorCall, caller: str
    ) -> objects_pb2.DoorAnswer | None:
        """The coordinator's answer; None: it ran nothing, run it here."""
        # The coordinator ends the call at its deadline; this end waits a
        # little longer (the answer's way back) for a coordinator that hangs.
        deadline = call.timeout_ms / 1000 + _ANSWER_SLACK_S if call.timeout_ms else None
        try:
            async with asyncio.timeout(deadline):
                answer = await peer.relay(call, caller)
        except TimeoutError:
            RELAYED_CALLS.labels("deadline").inc()
            return objects_pb2.DoorAnswer(
                id=call.id,
                code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0],
                details=(
                    f"Deadline Exceeded (write coordinator {peer.spec.name} did not answer in time)"
                ),
            )
        except TristoreError:
            # The coordinator refused the call before running it (a version
            # without relays, a node serving no door): it runs here.
            RELAYED_CALLS.labels("refused").inc()
            return None
        except ReplicaUnavailable as exc:
            RELAYED_CALLS.labels("broken").inc()
            self.peers.mark_down(peer.spec.name, str(exc))
            return objects_pb2.DoorAnswer(
                id=call.id,
                code=grpc.StatusCode.UNAVAILABLE.value[0],
                details=(
                    f"node {self.me.name} handed this call to write coordinator "
                    f"{peer.spec.name}, which went away with it ({exc}); it may have "
                    "run there: retry it"
                ),
            )
        RELAYED_CALLS.labels("answered").inc()
        # The client may send its next writes to the coordinator itself.
        answer.trailers.add(key=WRITE_HINT, value=peer.spec.grpc)
        return answer

    async def run_here(self, call: objects_pb2.DoorCall, caller: str) -> objects_pb2.DoorAnswer:
        """A call a peer relayed to this node."""
        if self.door is None:
            raise InvalidArgument(f"node {self.me.name} serves no door: run the call there")
        return await self.door.answer(call, caller, here=True)
