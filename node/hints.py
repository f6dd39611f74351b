"""Hinted handoff: give writes held for an absent home node back to it.

While a home node is down, the next node of its AZ takes its writes and keeps a
hint. This loop offers everything held for a hinted key to its home once the home
answers again (one merging commit: the home keeps, record by record, whatever
is newer, so a repeat is harmless), then drops the hint and the stand-in copy
in one synced batch.

The other way round, a home that decides a conditional change (the key's
first AZ serializes them on its home) first asks the other nodes of its AZ
what they hold of the key (:meth:`HintedHandoff.newest_in_my_az`; for a
change whose versions must be new, whether they hold one of those:
:meth:`HintedHandoff.versions_in_my_az`): a home back from the dead, or one
a coordinator could not reach for a while, may not have been handed a write
its fallback took meanwhile, and deciding against its own older record could
take a change whose precondition that write had already broken. One round
in the AZ, on the conditional path only; a node that does not answer makes
the home hear every node of the key's other AZs instead, and refuse the
change (ConditionalRequestConflict: nothing written, retry) rather than
guess only when one of those is silent too.

The same loop moves data when the cluster map changes (a node drains, comes
back, or joins): :meth:`HintedHandoff.rehome_all` hints every key this node
holds but is no longer home to, for the node of its AZ that is, and hints
whose home is home no more are sent to the one that is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from node.metrics import (
    CONDITIONAL_AZ_CHECKS_ELSEWHERE,
    CONDITIONAL_AZ_REFUSALS,
    HINTS_HANDED_OFF,
    HINTS_STUCK,
    KEYS_REHOMED,
)
from node.peers import Peers, RemoteReplica, Replica, ReplicaUnavailable
from node.quorum import Quorum
from node.replica_store import ReplicaStore
from tristore.config import NodeSection, NodeSpec
from tristore.errors import ConditionalRequestConflict, TristoreError
from tristore.model import Change, ObjectVersion
from tristore.placement import Placer
from tristore.stamps import ZERO, Stamp
from tristore.wakeup import wait_for_any

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: (home, bucket, key) of one hint.
HintKey = tuple[str, str, str]


class KeyStuck(Exception):
    """One hinted key cannot be handed over now (a body it refers to is held
    by no node that answers, say): the other hints go on without it."""


@dataclass
class _Stuck:
    """A hint whose hand-off failed though its home answered."""

    why: str
    tries: int
    #: time.monotonic() before which it is not tried again.
    next_try: float


class HintedHandoff:
    def __init__(self, store: ReplicaStore, peers: Peers, placer: Placer, cfg: NodeSection) -> None:
        self.store = store
        self.peers = peers
        self.placer = placer
        self.cfg = cfg
        self.quorum = Quorum(peers, placer, peers.me)
        #: Set when the map changed: every key held here is looked at again.
        self.rescan = asyncio.Event()
        self.rescan.set()  # at start too: a map may have changed while this node was down
        self.scanning = False
        store.rehome = self.home_in_my_az
        store.hear_az = self.newest_in_my_az
        store.hear_az_versions = self.versions_in_my_az
        #: Set when a write added hints: the loop sleeps on it (and on
        #: rescan) while none are pending, instead of looking twice a second.
        self._hinted = asyncio.Event()
        store.on_hinted = self._on_hinted
        #: Also called when a write added hints (the map comparison loop).
        self.on_hinted: Callable[[], None] | None = None
        #: Hints that failed to go though their home answered, tried again
        #: with backoff (:meth:`_hand_to`).
        self.stuck: dict[HintKey, _Stuck] = {}

    def _on_hinted(self) -> None:
        self._hinted.set()
        if self.on_hinted is not None:
            self.on_hinted()

    def home_in_my_az(self, bucket: str, key: str) -> str | None:
        """The node of this AZ that is home to the key, if that is not this node
        (None also when this AZ holds no copy of the key)."""
        home = self.placer.home_in(bucket, key, self.peers.me.az)
        return None if home is None or home.name == self.store_name else home.name

    async def newest_in_my_az(self, bucket: str, key: str) -> Stamp:
        """The newest record of the key the other nodes of this AZ hold (ZERO:
        none), each asked at once. Asked by this node before it decides a
        conditional change for the key's first AZ (ReplicaStore.commit): as
        its home, or as the fallback that stands in while the home does not
        answer a coordinator.

        A hand-off gives the key to the home before the fallback drops its
        copy, so a version a fallback no longer holds when asked is here
        already: the decision, made here after every answer, sees it.

        A node of this AZ that does not answer (down, or a damaged copy) may
        hold a write it took while this one was away; then every node of the
        key's other AZs is asked instead: a write that was acknowledged is in
        all three AZs, and a version a read finished is in a majority of
        them, this one among them, so in one of the others too. Only when
        those do not all answer either is the change refused
        (ConditionalRequestConflict: nothing written): one node down never
        refuses a conditional change."""

        async def stamp(replica: Replica) -> Stamp:
            v = await replica.read_meta(bucket, key, False)
            return v.stamp if v is not None else ZERO

        return max(await self._hear_az(bucket, key, stamp), default=ZERO)

    async def versions_in_my_az(self, bucket: str, key: str, vstamps: Sequence[Stamp]) -> Stamp:
        """The newest record of the key's versions ``vstamps`` the other nodes
        of this AZ hold (ZERO: none): asked by this node before it decides a
        change whose versions must be new (``Change.new_versions``), or an
        edit of one version's record (``Change.version_expect``), for the
        reason :meth:`newest_in_my_az` is asked (a fallback may hold such a
        record, taken while this home was away), and in the same way."""

        async def newest(replica: Replica) -> Stamp:
            held = ZERO
            for vstamp in vstamps:
                found, _ = await replica.read_versions(bucket, key, vstamp, False, 1, False)
                held = max([held, *(v.stamp for v in found)])
            return held

        return max(await self._hear_az(bucket, key, newest), default=ZERO)

    async def _hear_az(
        self, bucket: str, key: str, call: Callable[[Replica], Awaitable[_T]]
    ) -> list[_T]:
        """``call``'s answers from the other nodes of this AZ of the key's,
        each asked at once; when one does not answer, from every node of the
        key's other AZs too (ConditionalRequestConflict when those do not all
        answer either): see :meth:`newest_in_my_az`."""
        placement = self.placer.place(bucket, key)
        others = [
            n
            for azr in placement.azs
            if azr.az == self.peers.me.az
            for n in azr.nodes
            if n.name != self.store_name
        ]
        if not others:
            return []
        results = await self._ask(others, call)
        heard = [r for r in results.values() if not isinstance(r, Exception)]
        unheard = [
            f"{n} ({type(r).__name__}: {r})" for n, r in results.items() if isinstance(r, Exception)
        ]
        if not unheard:
            return heard
        nodes = [n for azr in placement.azs if azr.az != self.peers.me.az for n in azr.nodes]
        elsewhere = await self._ask(nodes, call)
        silent = [n for n, r in elsewhere.items() if isinstance(r, Exception)]
        if nodes and not silent:
            CONDITIONAL_AZ_CHECKS_ELSEWHERE.inc()
            return heard + [r for r in elsewhere.values() if not isinstance(r, Exception)]
        CONDITIONAL_AZ_REFUSALS.labels("unheard").inc()
        raise ConditionalRequestConflict(
            f"{bucket}/{key}: this conditional request is decided by {self.store_name}, "
            f"which must first hear what the other nodes of {self.peers.me.az} hold of the "
            f"key (a write taken while it was away), and {', '.join(unheard)} did not "
            f"answer, nor did every node of the key's other AZs "
            f"({', '.join(silent) or 'none'}): nothing was written; retry"
        )

    async def _ask(
        self, nodes: Sequence[NodeSpec], call: Callable[[Replica], Awaitable[_T]]
    ) -> dict[str, _T | Exception]:
        """Each node's answer to ``call``, asked at once
        (:meth:`Quorum.ask_nodes`), within half the coordinator's deadline
        for the commit; a node that failed, timed out or holds a damaged
        copy: its error."""
        answers = await self.quorum.ask_nodes(
            nodes, call, timeout_s=self.cfg.replica_timeout_s / 2, keep_errors=True
        )
        return {replica.spec.name: r for replica, r in answers}

    async def run_forever(self) -> None:
        while True:
            try:
                if self.rescan.is_set():
                    self.rescan.clear()
                    self.scanning = True
                    try:
                        await self.rehome_all()
                    finally:
                        self.scanning = False
                if self.store.hints_pending:
                    await self.run_once()
            except Exception:
                log.exception("hinted handoff round failed")
            if self.store.hints_pending or self.rescan.is_set():
                # Hints wait for a home that is down (or a round failed):
                # offered again every hint_interval_s.
                await asyncio.sleep(self.cfg.hint_interval_s)
            else:
                await self._until_hinted()

    async def _until_hinted(self) -> None:
        """Return once a write added hints or the map changed."""
        self._hinted.clear()
        if self.store.hints_pending or self.rescan.is_set():
            return
        await wait_for_any([self._hinted, self.rescan], None)

    async def rehome_all(self) -> int:
        """Hint every key held here that another node of this AZ is home to."""
        added = 0
        async for page in self.store.held_keys():
            items = [
                (home, bucket, key, stamp)
                for bucket, key, stamp in page
                if (home := self.home_in_my_az(bucket, key)) is not None
            ]
            if items:
                added += await self.store.mark_hints(items)
        if added:
            KEYS_REHOMED.inc(added)
            log.info(
                "map epoch %d: %d keys held here belong on other nodes of %s; handing them over",
                self.placer.epoch,
                added,
                self.peers.me.az,
            )
        return added

    async def run_once(self) -> int:
        """Hand back what can be handed back now; returns how many hints went."""
        done = 0
        for home in await self.store.hint_homes():
            if self.placer.node_named(home) is None:
                await self._redirect(home)  # the node left the map
                self._forget_stuck(home, set())
                continue
            if home not in self.peers.remote or not self.peers.is_up(home):
                continue
            try:
                done += await self._hand_to(home)
            except (ReplicaUnavailable, TristoreError) as exc:
                log.info("handoff to %s paused: %s", home, exc)
        return done

    async def _hand_to(self, home: str) -> int:
        """One pass over the hints held for ``home``. A key that fails while
        the home answers (a body no node delivers, a commit the home refuses)
        is logged once and tried again later, with backoff (:attr:`stuck`):
        one such key must not hold back every other write the home missed.
        A home that stops answering ends the pass (ReplicaUnavailable)."""
        target = self.peers.remote[home]
        done = 0
        gate = asyncio.Semaphore(self.cfg.handoff_parallel)

        async def one(bucket: str, key: str, stamp: Stamp) -> bool:
            async with gate:
                return await self._hand_one(target, home, bucket, key, stamp)

        seen: set[HintKey] = set()
        after: tuple[str, str] | None = None
        while batch := await self.store.hints_for(home, after=after):
            after = batch[-1][:2]
            now = time.monotonic()
            due = [h for h in batch if self._due((home, h[0], h[1]), now)]
            seen.update((home, b, k) for b, k, _ in batch)
            results = await asyncio.gather(*(one(*h) for h in due), return_exceptions=True)
            gone: ReplicaUnavailable | None = None
            for (bucket, key, _), r in zip(due, results, strict=True):
                hk = (home, bucket, key)
                if isinstance(r, ReplicaUnavailable):
                    gone = r
                elif isinstance(r, Exception):
                    self._stick(hk, r)
                elif isinstance(r, BaseException):
                    raise r
                else:
                    done += r
                    self._unstick(hk)
            if gone is not None:
                raise gone
        self._forget_stuck(home, seen)
        if done:
            log.info("handed %d hinted writes to %s", done, home)
        return done

    def _forget_stuck(self, home: str, held: set[HintKey]) -> None:
        """Forget the stuck hints for ``home`` not among ``held`` (handed
        over or redirected meanwhile)."""
        for hk in [hk for hk in self.stuck if hk[0] == home and hk not in held]:
            del self.stuck[hk]
        HINTS_STUCK.set(len(self.stuck))

    def _due(self, hk: HintKey, now: float) -> bool:
        stuck = self.stuck.get(hk)
        return stuck is None or now >= stuck.next_try

    def _stick(self, hk: HintKey, exc: Exception) -> None:
        home, bucket, key = hk
        why = f"{type(exc).__name__}: {exc}"
        stuck = self.stuck.get(hk)
        tries = 1 if stuck is None else stuck.tries + 1
        wait = min(self.cfg.hint_interval_s * 2 ** (tries - 1), self.cfg.handoff_retry_max_s)
        self.stuck[hk] = _Stuck(why, tries, time.monotonic() + wait)
        HINTS_STUCK.set(len(self.stuck))
        if stuck is None:
            log.warning(
                "hinted write of %s/%s cannot be handed to %s (%s); the other hints go on, "
                "this one is tried again with backoff",
                bucket,
                key,
                home,
                why,
            )
        else:
            log.debug("hinted write of %s/%s for %s still stuck: %s", bucket, key, home, why)

    def _unstick(self, hk: HintKey) -> None:
        if self.stuck.pop(hk, None) is not None:
            HINTS_STUCK.set(len(self.stuck))
            log.info("hinted write of %s/%s handed to %s after all", hk[1], hk[2], hk[0])

    async def _hand_one(
        self, target: RemoteReplica, home: str, bucket: str, key: str, stamp: Stamp
    ) -> bool:
        """Hand one hinted key to ``home``; True when its hint was dropped."""
        now_home = self.home_in_my_az(bucket, key)
        if now_home != home and (now_home is not None or self._is_home_here(bucket, key)):
            await self._redirect_one(home, bucket, key, stamp)  # the map changed
            return False
        # Everything held here for the key goes over in one merge: the home
        # keeps what is newer on its side, part by part.
        shipped_seq = self.store.committed_seq
        state = await self.store.key_state(bucket, key)
        bodies = {
            v.data_id: v for v in (state.head, *state.versions) if v is not None and v.data_id
        }
        for v in bodies.values():
            await self._give_body(target, v)
        if state.head is not None or state.versions or state.removed:
            versions = list(state.versions)
            head = state.head
            if (
                head is not None
                and head.null_version
                and not head.is_version
                and all(v.vstamp != head.vstamp for v in versions)
            ):
                # As its own commit carried it (Change.of): an unversioned
                # DELETE ends the null version the home may still hold.
                versions.append(head)
            change = Change(
                bucket,
                key,
                stamp,
                head=head,
                versions=tuple(versions),
                removed=tuple(state.removed),
                merge=True,
                withdrawn=tuple(state.withdrawn),
            )
            await target.commit(change)
        # The home now holds this version or a newer one; the copy here was
        # only a stand-in unless this node is a home for the key itself.
        dropped = await self.store.drop_hint(
            home,
            bucket,
            key,
            stamp,
            drop_copy=not self._is_home_here(bucket, key),
            shipped_seq=shipped_seq,
        )
        if dropped:
            HINTS_HANDED_OFF.inc()
        return dropped

    def _is_home_here(self, bucket: str, key: str) -> bool:
        return any(azr.home.name == self.store_name for azr in self.placer.place(bucket, key).azs)

    async def _redirect(self, home: str) -> None:
        """Hints for a node that left the map go to the key's home now."""
        moved = 0
        while batch := await self.store.hints_for(home):
            for bucket, key, stamp in batch:
                await self._redirect_one(home, bucket, key, stamp)
                moved += 1
        log.info("%d hints held for %s (no longer in the map) redirected", moved, home)

    async def _redirect_one(self, home: str, bucket: str, key: str, stamp: Stamp) -> None:
        """The hint for ``home`` is stale (the map changed): hint the key's home
        now instead, or keep the key when that is this node."""
        now_home = self.home_in_my_az(bucket, key)
        if now_home is not None and now_home != home:
            await self.store.mark_hints([(now_home, bucket, key, stamp)])
        await self.store.drop_hint(home, bucket, key, stamp, drop_copy=False)

    @property
    def store_name(self) -> str:
        return self.peers.me.name

    async def _give_body(self, target: RemoteReplica, v: ObjectVersion) -> None:
        """Stage ``v``'s body on the home unless it holds it already: from
        this node, or, when this node lacks it, from the key's other nodes.

        A stand-in may hold a record without its body: one written before
        record-only changes on a fallback copied the body there
        (Quorum.give_bodies), or one whose home took the body and then
        went down before a change of the record (new tags, a replication
        status) came here. The home, back, most often holds the body."""
        if not v.body_size or await Quorum.holds_body(target, v):
            return
        last = (v.body_size - 1) // v.chunk_size
        if await self.store.read_chunk(v.data_id, last) is not None:
            await target.stage(v.data_id, self._chunks(v.data_id, v.body_size, v.chunk_size))
            return
        log.info(
            "body of %s/%s@%s for %s is not held here: copied from the key's other nodes",
            v.bucket,
            v.key,
            v.version_id,
            target.spec.name,
        )
        try:
            await target.stage(v.data_id, self.quorum.copy_chunks(v, []))
        except TristoreError as exc:  # no holder delivered it
            raise KeyStuck(
                f"body {v.data_id.hex()} is held by no node that answers: {exc}"
            ) from exc

    async def _chunks(
        self, data_id: bytes, size: int, chunk_size: int
    ) -> AsyncIterator[tuple[int, bytes]]:
        for index in range((size + chunk_size - 1) // chunk_size):
            chunk = await self.store.read_chunk(data_id, index)
            if chunk is None:
                raise KeyStuck(f"chunk {index} of body {data_id.hex()} is missing locally")
            yield index, chunk
