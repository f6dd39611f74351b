"""Quorum I/O: one node in each of a key's AZs, with fallbacks.

Every call here asks *one* node per AZ: the home first, then the AZ's next
nodes (which take a hint for the home when they take a write). An AZ none of
whose nodes answers is an :class:`AzDown`; a step that needs every AZ turns the
AZs that are down into one :class:`QuorumUnavailable` naming them
(:func:`quorum_error`). This is the layer the protocol (node/protocol.py),
repair and the object operations talk to the replicas through, in the spirit of
Garage's ``try_call_many(endpoint, nodes, msg, RequestStrategy::with_quorum(n))``:

- :meth:`Quorum.ask_az` — a call on the first node of one AZ that answers;
- :meth:`Quorum.ask_every_az` — that, in every AZ of a placement at once;
- :meth:`Quorum.ask_nodes` — a call on each of some nodes at once, whatever
  is believed of their health;
- :meth:`Quorum.ask_every_node` — a call on every node of every AZ of a
  placement (what a read the witness cannot vouch for relies on);
- :meth:`Quorum.pick_targets` — one live node per AZ for a streamed body;
- :meth:`Quorum.commit` / :meth:`Quorum.commit_all` — a change in all three AZs;
- :meth:`Quorum.write_back` / :meth:`Quorum.write_back_all` — a version to AZs lacking it;
- :meth:`Quorum.stream_body` / :meth:`Quorum.copy_chunks` — a body from its holders;
- :meth:`Quorum.heal` — a damaged copy (CorruptData) written over in the background.

A holder whose copy of a chunk fails its checksum answers CorruptData: the
body goes on from the next holder, and the damaged chunk is mended (a sound
copy written over it) in the background.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from node.metrics import CORRUPT_REPAIRED, QUORUM_FAILURES
from node.peers import Peers, Replica, ReplicaUnavailable
from node.replica_store import CommitResult
from tristore import loops
from tristore.config import NodeSpec
from tristore.errors import (
    ConditionalRequestConflict,
    CorruptData,
    QuorumUnavailable,
    ServiceUnavailable,
    StorageFull,
)
from tristore.model import Change, ObjectVersion
from tristore.placement import AzReplicas, Placement, Placer
from tristore.stamps import Stamp

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: A node chosen for an AZ and the home it stands in for ("": it is the home).
Target = tuple[NodeSpec, str]


class AzDown(Exception):
    """No node of ``az`` answered (``nodes``: those tried); ``full``: those of
    them that answered but refuse new data for lack of disk space."""

    def __init__(self, az: str, nodes: list[str], full: Iterable[str] = ()) -> None:
        super().__init__(az)
        self.az = az
        self.nodes = nodes
        self.full = list(full)


def quorum_error(
    failed: list[AzDown], what: str, need: str = "all three of the key's AZs"
) -> QuorumUnavailable:
    """The error of a step (``what``) that needed the AZs in ``failed``
    (``need`` says how many it needs); counted in the quorum-failure metric
    by AZ."""
    for f in failed:
        QUORUM_FAILURES.labels(f.az).inc()

    def why(f: AzDown) -> str:
        down = [n for n in f.nodes if n not in f.full]
        parts = [f"{', '.join(down)} unreachable"] if down else []
        if f.full:
            parts.append(f"{', '.join(f.full)} out of disk space")
        return "; ".join(parts)

    parts = "; ".join(f"AZ {f.az} is unavailable (nodes {why(f)})" for f in failed)
    return QuorumUnavailable(f"{parts}: {what} needs {need}")


def hint_for(node: NodeSpec, azr: AzReplicas) -> str:
    """The home a node stands in for when it takes a write for ``azr``."""
    return "" if node.name == azr.home.name else azr.home.name


class Quorum:
    """Quorum calls through this node's peers and view of which nodes are up."""

    def __init__(self, peers: Peers, placer: Placer, me: NodeSpec) -> None:
        self.peers = peers
        self.placer = placer
        self.me = me
        # Repairs of damaged copies under way (held so they are not collected).
        self._healing: set[asyncio.Task[None]] = set()
        self._healing_what: set[str] = set()
        self._loop = loops.LoopBound()

    def heal(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run ``work`` (writing a sound copy over a damaged one) in the
        background: the read that found the damage answers without waiting.
        A failure is logged; the next read or scrub finds the damage again."""

        if what in self._healing_what:
            work.close()  # the same copy is being repaired already
            return

        async def run() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001 - logged; found again later
                log.warning("repairing %s failed: %s", what, exc)
            finally:
                self._healing_what.discard(what)

        self._healing_what.add(what)
        task = asyncio.create_task(run())
        self._healing.add(task)
        task.add_done_callback(self._healing.discard)

    async def healed(self) -> None:
        """Wait for the repairs under way (tests)."""
        while self._healing:
            await asyncio.gather(*self._healing, return_exceptions=True)

    async def mend_chunk(
        self, bad: Replica, version: ObjectVersion, index: int, holders: list[Replica]
    ) -> bool:
        """Write a sound copy of chunk ``index`` of ``version``'s body, read
        from ``holders``, over the damaged one ``bad`` holds."""
        start = index * version.chunk_size
        length = min(version.chunk_size, version.body_size - start)
        data = b"".join([p async for p in self._read_range(version, holders, 0, start, length)])

        async def one() -> AsyncIterator[tuple[int, bytes]]:
            yield index, data

        mended = await bad.mend(version.data_id, one()) > 0
        if mended:
            CORRUPT_REPAIRED.labels("chunk").inc()
            log.info(
                "mended chunk %d of %s/%s@%s on %s",
                index,
                version.bucket,
                version.key,
                version.version_id,
                bad.spec.name,
            )
        return mended

    def candidates(self, azr: AzReplicas, writing: bool = False) -> list[NodeSpec]:
        """The AZ's nodes to try, in order: those believed up (for ``writing``,
        those with disk space first). When none is up, all of them: what is
        known of a peer's health can be a probe interval old (at start-up,
        say), and a dead node refuses at once on a live network."""
        up = [n for n in azr.nodes if self.peers.is_up(n.name)] or list(azr.nodes)
        if writing:
            up.sort(key=lambda n: self.peers.is_full(n.name))
        return up

    async def ask_az(
        self, azr: AzReplicas, call: Callable[[Replica], Awaitable[_T]]
    ) -> tuple[Replica, _T]:
        """``call`` on the first node of the AZ that answers (AzDown if none does)."""
        for node in self.candidates(azr):
            replica = self.peers.replica(node)
            try:
                return replica, await call(replica)
            except ReplicaUnavailable as exc:
                self.peers.mark_down(node.name, str(exc))
        raise AzDown(azr.az, [n.name for n in azr.nodes])

    async def ask_every_az(
        self, placement: Placement, call: Callable[[Replica], Awaitable[_T]]
    ) -> tuple[list[tuple[AzReplicas, Replica, _T]], list[AzDown]]:
        """:meth:`ask_az` in every AZ of ``placement`` at once: the answers (in
        AZ order) and the AZs that are down. Any other error is raised (the
        first, in AZ order)."""
        results = await asyncio.gather(
            *(self.ask_az(a, call) for a in placement.azs), return_exceptions=True
        )
        answers: list[tuple[AzReplicas, Replica, _T]] = []
        down: list[AzDown] = []
        for azr, r in zip(placement.azs, results, strict=True):
            if isinstance(r, AzDown):
                down.append(r)
            elif isinstance(r, BaseException):
                raise r
            else:
                answers.append((azr, *r))
        return answers, down

    async def ask_nodes(
        self,
        nodes: Sequence[NodeSpec],
        call: Callable[[Replica], Awaitable[_T]],
        timeout_s: float | None = None,
        keep_errors: bool = False,
    ) -> list[tuple[Replica, _T | Exception]]:
        """``call`` on each of ``nodes`` at once, whatever this node believes
        of their health (a view that lags, at start-up say, must not make a
        step fail that could succeed): each node's replica and answer, in the
        order of ``nodes``. A node that does not answer (ReplicaUnavailable,
        or nothing within ``timeout_s`` when given) is marked down, its error
        as its answer. Any other error is raised (the first, in order), or
        with ``keep_errors`` given as that node's answer too."""
        silent: tuple[type[Exception], ...] = (ReplicaUnavailable,)
        if timeout_s is not None:
            silent = (ReplicaUnavailable, TimeoutError)

        async def one(replica: Replica) -> tuple[Replica, _T | Exception]:
            try:
                async with asyncio.timeout(timeout_s):  # not wait_for: see RemoteReplica._within
                    return replica, await call(replica)
            except silent as exc:
                self.peers.mark_down(replica.spec.name, str(exc) or "timed out")
                return replica, exc
            except Exception as exc:
                if keep_errors:
                    return replica, exc
                raise

        results = await asyncio.gather(
            *(one(self.peers.replica(n)) for n in nodes), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if not isinstance(r, BaseException)]

    async def ask_whole_az(
        self, azr: AzReplicas, call: Callable[[Replica], Awaitable[_T]]
    ) -> tuple[list[tuple[Replica, _T]], list[str]]:
        """:meth:`ask_nodes` on every node of the AZ: the answers (in the AZ's
        order, home first) and the nodes that did not answer. Any other error
        is raised.

        The home is asked once the others answered. A hinted hand-off gives a
        key to its home before the fallback drops its stand-in copy
        (node/hints.py), so a home asked after its fallback answered holds
        whatever that fallback no longer did; both asked at once, the home
        could answer before a hand-off and the fallback after it, and neither
        would hold the key."""
        others = await self.ask_nodes(azr.nodes[1:], call)
        results = [*await self.ask_nodes([azr.home], call), *others]
        answers: list[tuple[Replica, _T]] = []
        failed: list[str] = []
        for replica, r in results:
            if isinstance(r, Exception):
                failed.append(replica.spec.name)
            else:
                answers.append((replica, r))
        return answers, failed

    async def ask_every_node(
        self, placement: Placement, call: Callable[[Replica], Awaitable[_T]]
    ) -> list[tuple[AzReplicas, list[tuple[Replica, _T]], list[str]]]:
        """:meth:`ask_whole_az` in every AZ of ``placement`` at once: for each
        AZ (in order), the answers and the nodes that did not answer."""
        results = await asyncio.gather(
            *(self.ask_whole_az(a, call) for a in placement.azs), return_exceptions=True
        )
        out: list[tuple[AzReplicas, list[tuple[Replica, _T]], list[str]]] = []
        for azr, r in zip(placement.azs, results, strict=True):
            if isinstance(r, BaseException):
                raise r
            out.append((azr, *r))
        return out

    async def pick_targets(self, placement: Placement, conditional: bool = False) -> list[Target]:
        """One node per AZ for a streamed body, with the home it stands in for.
        A conditional write's first AZ is always its home (see :meth:`commit_all`)."""
        if any(not any(self.peers.is_up(n.name) for n in azr.nodes) for azr in placement.azs):
            # Look again before refusing: what is known may be a probe interval old.
            await self.peers.probe_once()
        targets: list[Target] = []
        failed: list[AzDown] = []
        for i, azr in enumerate(placement.azs):
            up = [n for n in azr.nodes if self.peers.is_up(n.name)]
            node = next((n for n in up if not self.peers.is_full(n.name)), None)
            node = node or next(iter(up), None)  # all full: its answer names them
            if conditional and i == 0:
                node = azr.home
            if node is None:
                failed.append(AzDown(azr.az, [n.name for n in azr.nodes]))
            else:
                targets.append((node, hint_for(node, azr)))
        if failed:
            raise quorum_error(failed, "a write")
        return targets

    async def commit(
        self,
        change: Change,
        placement: Placement,
        targets: list[Target] | None = None,
    ) -> list[CommitResult]:
        """Commit ``change`` in all three AZs (a conditional one in the first AZ
        first, and in the others only once that one took it)."""
        azs = list(enumerate(placement.azs))
        if not change.conditional:
            return await self.commit_all(change, azs, targets)
        uncertain: set[int] = set()
        try:
            first = await self.commit_all(change, azs[:1], targets, uncertain)
        except ConditionalRequestConflict:
            # A fallback that could not hear its AZ refuses by raising: after
            # a home that did not answer, that refusal is a guess too.
            if uncertain:
                raise self._undecided(change, placement) from None
            raise
        if first[0].conflict and uncertain:
            # The home did not answer and a fallback refused: the home may
            # have taken the change all the same. A refusal would be a guess.
            raise self._undecided(change, placement)
        if first[0].conflict:
            raise ConditionalRequestConflict(
                f"{change.bucket}/{change.key} changed while this conditional request ran; "
                "retry it (it will be checked against the new state)"
            )
        if not first[0].applied:
            return first  # newer than this try: restamp and go again
        decided = replace(
            change, expect=None, new_versions=False, version_expect=None, condition=None
        )
        return first + await self.commit_all(decided, azs[1:], targets)

    @staticmethod
    def _undecided(change: Change, placement: Placement) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{change.bucket}/{change.key}: the node deciding this conditional request "
            f"({placement.azs[0].home.name}) did not answer, and whether it took the "
            "change is unknown; read the key before retrying"
        )

    async def commit_all(
        self,
        change: Change,
        azs: list[tuple[int, AzReplicas]],
        targets: list[Target] | None,
        uncertain: set[int] | None = None,
    ) -> list[CommitResult]:
        """Commit ``change`` on one node of each of ``azs`` (index into the
        placement, AZ), in parallel: ``targets[index]`` when given, else the
        first candidate that answers. Every AZ must take it. The index of an
        AZ whose answer came from a later candidate, after one that failed
        (and may have taken the change), goes into ``uncertain``."""

        async def one_az(i: int, azr: AzReplicas) -> CommitResult:
            if targets is not None:
                candidates = [targets[i]]
            elif change.conditional:
                # The home decides a conditional change whatever this node believes
                # of its health (a view that lags, at start-up say, must not make
                # two coordinators ask two different nodes); a fallback decides
                # only when the home does not answer.
                candidates = [(n, hint_for(n, azr)) for n in azr.nodes]
            else:
                candidates = [(n, hint_for(n, azr)) for n in self.candidates(azr, writing=True)]
            maybe_took = False  # a node tried before may have taken it
            full: list[str] = []
            for node, home in candidates:
                if maybe_took and uncertain is not None:
                    # Whatever this node answers (or refuses by raising), the
                    # one before it may have taken the change.
                    uncertain.add(i)
                replica = self.peers.replica(node)
                try:
                    if home and targets is None:
                        await self.give_bodies(change, replica)
                    result = await replica.commit(change, home)
                except ReplicaUnavailable as exc:
                    self.peers.mark_down(node.name, str(exc))
                    maybe_took = True
                    continue
                except StorageFull as exc:  # refused before writing anything
                    self.peers.mark_full(node.name, str(exc))
                    full.append(node.name)
                    continue
                return result
            raise AzDown(azr.az, [n.name for n in azr.nodes], full)

        results = await loops.gather(
            self._loop.loop, *(one_az(i, azr) for i, azr in azs), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, AzDown)]
        if failed:
            raise quorum_error(failed, "a write")
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, CommitResult)]

    async def give_bodies(self, change: Change, replica: Replica) -> None:
        """Stage on ``replica`` the chunked bodies ``change``'s records refer
        to that it does not hold, copied from the key's nodes that do.

        For a change committed without chosen targets (a record-only change
        of a stored version: new tags or ACL, a replication status, a
        version made current again) to a node standing in for its AZ's
        home: that node may never have taken the version's body (the home
        did, before it went down), and no node may hold a record whose body
        it lacks. Its hint would hand the record back without the body, and
        a read it answered for its AZ would find nothing to stream. A home
        is not checked: a body written while it was away is handed back to
        it by the fallback that took it (node/hints.py)."""
        bodies = {
            v.data_id: v
            for v in (change.head, *change.versions)
            if v is not None and v.data_id and v.body_size
        }
        for v in bodies.values():
            if not await self.holds_body(replica, v):
                await replica.stage(v.data_id, self.copy_chunks(v, []))

    @staticmethod
    async def holds_body(replica: Replica, v: ObjectVersion) -> bool:
        """Whether ``replica`` holds the last chunk of ``v``'s body (a body is
        committed whole: staged chunk by chunk before its record)."""
        try:
            async for _ in replica.read_data(v.data_id, v.chunk_size, v.body_size - 1, 1):
                pass
        except LookupError:
            return False
        return True

    async def write_back(
        self,
        v: ObjectVersion,
        azr: AzReplicas,
        holders: list[Replica],
        merge: bool = False,
        as_version: bool = False,
    ) -> CommitResult:
        """Write ``v`` to one node of ``azr``: as the key's current record (if
        newer than the one there), or ``as_version`` only as one of its versions.
        A chunked body is staged first, copied from ``holders``. What that
        node answered."""
        if as_version:
            change = Change(v.bucket, v.key, v.stamp, versions=(v,), merge=True)
        else:
            change = replace(Change.of(v), merge=True) if merge else Change.of(v)
        full: list[str] = []
        for node in self.candidates(azr, writing=True):
            replica = self.peers.replica(node)
            try:
                if v.data_id:
                    await replica.stage(v.data_id, self.copy_chunks(v, holders))
                return await replica.commit(change, hint_for(node, azr))
            except ReplicaUnavailable as exc:
                self.peers.mark_down(node.name, str(exc))
            except StorageFull as exc:
                self.peers.mark_full(node.name, str(exc))
                full.append(node.name)
        raise AzDown(azr.az, [n.name for n in azr.nodes], full)

    async def write_back_all(
        self,
        v: ObjectVersion,
        azs: list[AzReplicas],
        holders: list[Replica],
        what: str,
        as_version: bool = False,
        skip_full: bool = False,
        above: list[Stamp] | None = None,
    ) -> list[AzDown]:
        """:meth:`write_back` to each of ``azs`` in parallel; every one must
        take it (else QuorumUnavailable for ``what``). With ``skip_full`` an
        AZ whose every node refuses for lack of disk space is left out, as
        one that does not answer: those AZs are returned. Into ``above`` go
        the current stamps of the nodes where ``v`` did not become current
        though newer by stamp or by version: a record of an older version
        above it (CommitResult.older_above), or a newer version that ``v``,
        a record of an older one, may not replace (newer_version)."""
        results = await asyncio.gather(
            *(self.write_back(v, azr, holders, as_version=as_version) for azr in azs),
            return_exceptions=True,
        )
        skipped = [
            r
            for r in results
            if isinstance(r, AzDown) and skip_full and r.full and set(r.full) == set(r.nodes)
        ]
        failed = [r for r in results if isinstance(r, AzDown) and r not in skipped]
        if failed:
            raise quorum_error(failed, what)
        for r in results:
            if isinstance(r, BaseException) and r not in skipped:
                raise r
            if not isinstance(r, CommitResult) or above is None:
                continue
            if r.older_above or r.newer_version:
                above.append(r.current)
        return skipped

    async def copy_chunks(
        self, v: ObjectVersion, holders: list[Replica]
    ) -> AsyncIterator[tuple[int, bytes]]:
        """``v``'s body as numbered chunks, for a stage stream."""
        index = 0
        async for piece in self.stream_body(v, holders, 0, v.body_size):
            yield index, piece
            index += 1

    def _is_home(self, version: ObjectVersion, replica: Replica) -> bool:
        """Whether ``replica`` is its AZ's home for ``version``'s key."""
        placement = self.placer.place(version.bucket, version.key)
        return any(azr.home.name == replica.spec.name for azr in placement.azs)

    def _any_holders(self, version: ObjectVersion) -> tuple[list[Replica], int]:
        """With no holders known (a cache hit): the node of each of the key's
        AZs a write stores the body on (its home, unless that was down), this
        node first if it is one of them; then the others, for a body written
        while a home was down. And how many of the list are the first (the
        segments of a read are spread over those). A node that is not a home
        holds no body: asked first, it would miss for every segment."""
        placement = self.placer.place(version.bucket, version.key)
        ordered = [self.candidates(azr) for azr in placement.azs]
        first = sorted((nodes[0] for nodes in ordered), key=lambda n: n.name != self.me.name)
        rest = [n for nodes in ordered for n in nodes[1:]]
        return [self.peers.replica(n) for n in first + rest], len(first)

    async def stream_body(
        self, version: ObjectVersion, holders: list[Replica], offset: int, length: int
    ) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length) of ``version``'s body, in order.

        Up to ``read_ahead_chunks`` chunks are fetched ahead of what was
        yielded, by parallel ReadData streams of a quarter of them each, spread
        over the holders (all on this node when it holds the body: no RPC is
        cheaper); a stream that fails resumes on the next holder. Memory stays
        bounded by the read-ahead whatever the size of the body."""
        spread = len(holders)
        if not holders:
            holders, spread = self._any_holders(version)
        ahead = self.peers.cfg.node.read_ahead_chunks
        per_segment = max(1, ahead // 4)
        segment = per_segment * version.chunk_size
        if ahead <= 1 or length <= segment:
            async for piece in self._read_range(version, holders, 0, offset, length):
                yield piece
            return
        local = holders[0].spec.name == self.me.name
        end = offset + length
        starts = [offset, *range((offset // segment + 1) * segment, end, segment)]

        async def fetch(i: int) -> list[bytes]:
            start = starts[i]
            stop = starts[i + 1] if i + 1 < len(starts) else end
            first = 0 if local else i % spread
            return [p async for p in self._read_range(version, holders, first, start, stop - start)]

        window = max(1, ahead // per_segment)
        inflight: collections.deque[asyncio.Task[list[bytes]]] = collections.deque()
        following = 0
        try:
            while following < len(starts) or inflight:
                while following < len(starts) and len(inflight) < window:
                    inflight.append(asyncio.create_task(fetch(following)))
                    following += 1
                pieces = await inflight.popleft()
                for piece in pieces:
                    yield piece
                del pieces
        finally:
            for task in inflight:
                task.cancel()
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)

    async def _read_range(
        self,
        version: ObjectVersion,
        holders: list[Replica],
        first: int,
        offset: int,
        length: int,
    ) -> AsyncIterator[bytes]:
        """Stream a range from one holder (``holders[first]``, rotating); if it
        fails, resume from the next one."""
        sent = 0
        last_error: Exception | None = None
        for k in range(len(holders)):
            replica = holders[(first + k) % len(holders)]
            try:
                async for piece in replica.read_data(
                    version.data_id, version.chunk_size, offset + sent, length - sent
                ):
                    sent += len(piece)
                    yield piece
                if sent == length:
                    return
            except (ReplicaUnavailable, LookupError) as exc:
                last_error = exc
                # A body missing on a node that is not its AZ's home for the
                # key is expected (it answered for a home that was down): no
                # warning for it.
                missed = isinstance(exc, LookupError) and not self._is_home(version, replica)
                log.log(
                    logging.DEBUG if missed else logging.WARNING,
                    "body of %s/%s from %s failed: %s",
                    version.bucket,
                    version.key,
                    replica.spec.name,
                    exc,
                )
            except CorruptData as exc:
                # The chunk that starts here is damaged on that holder: the
                # body goes on from the next, which also gives the sound copy.
                last_error = exc
                index = (offset + sent) // version.chunk_size
                log.warning(
                    "chunk %d of %s/%s on %s is damaged (%s): read from another holder",
                    index,
                    version.bucket,
                    version.key,
                    replica.spec.name,
                    exc,
                )
                others = [h for h in holders if h is not replica]
                if others:
                    self.heal(
                        self.mend_chunk(replica, version, index, others),
                        f"chunk {index} of {version.bucket}/{version.key} on {replica.spec.name}",
                    )
        raise ServiceUnavailable(
            f"no replica could deliver the rest of {version.bucket}/{version.key} "
            f"after {offset + sent} of {offset + length} bytes ({last_error}); retry"
        )
