"""Hinted handoff: give writes held for an absent home node back to it.

While a home node is down, the next node of its AZ takes its writes and keeps a
hint. This loop offers everything held for a hinted key to its home once the home
answers again (one merging commit: the home keeps, record by record, whatever
is newer, so a repeat is harmless), then drops the hint and the stand-in copy
in one synced batch.

The same loop moves data when the cluster map changes (a node drains, comes
back, or joins): :meth:`HintedHandoff.rehome_all` hints every key this node
holds but is no longer home to, for the node of its AZ that is, and hints
whose home is home no more are sent to the one that is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from node.metrics import HINTS_HANDED_OFF, KEYS_REHOMED
from node.peers import Peers, RemoteReplica, ReplicaUnavailable
from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.errors import TristoreError
from tristore.model import Change
from tristore.placement import Placer
from tristore.stamps import Stamp
from tristore.wakeup import wait_for_any

log = logging.getLogger(__name__)


class HintedHandoff:
    def __init__(self, store: ReplicaStore, peers: Peers, placer: Placer, cfg: NodeSection) -> None:
        self.store = store
        self.peers = peers
        self.placer = placer
        self.cfg = cfg
        #: Set when the map changed: every key held here is looked at again.
        self.rescan = asyncio.Event()
        self.rescan.set()  # at start too: a map may have changed while this node was down
        self.scanning = False
        store.rehome = self.home_in_my_az
        #: Set when a write added hints: the loop sleeps on it (and on
        #: rescan) while none are pending, instead of looking twice a second.
        self._hinted = asyncio.Event()
        store.on_hinted = self._on_hinted
        #: Also called when a write added hints (the map comparison loop).
        self.on_hinted: Callable[[], None] | None = None

    def _on_hinted(self) -> None:
        self._hinted.set()
        if self.on_hinted is not None:
            self.on_hinted()

    def home_in_my_az(self, bucket: str, key: str) -> str | None:
        """The node of this AZ that is home to the key, if that is not this node
        (None also when this AZ holds no copy of the key)."""
        for azr in self.placer.place(bucket, key).azs:
            if azr.az == self.peers.me.az:
                return None if azr.home.name == self.store_name else azr.home.name
        return None

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
                continue
            if home not in self.peers.remote or not self.peers.is_up(home):
                continue
            try:
                done += await self._hand_to(home)
            except (ReplicaUnavailable, TristoreError) as exc:
                log.info("handoff to %s paused: %s", home, exc)
        return done

    async def _hand_to(self, home: str) -> int:
        target = self.peers.remote[home]
        done = 0
        gate = asyncio.Semaphore(self.cfg.handoff_parallel)

        async def one(bucket: str, key: str, stamp: Stamp) -> bool:
            async with gate:
                return await self._hand_one(target, home, bucket, key, stamp)

        while batch := await self.store.hints_for(home):
            results = await asyncio.gather(*(one(*h) for h in batch), return_exceptions=True)
            done += sum(1 for r in results if r is True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            log.info("handed %d hinted writes to %s", done, home)
        return done

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
        for data_id, v in bodies.items():
            await target.stage(data_id, self._chunks(data_id, v.body_size, v.chunk_size))
        if state.head is not None or state.versions or state.removed:
            change = Change(
                bucket,
                key,
                stamp,
                head=state.head,
                versions=tuple(state.versions),
                removed=tuple(state.removed),
                merge=True,
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

    async def _chunks(
        self, data_id: bytes, size: int, chunk_size: int
    ) -> AsyncIterator[tuple[int, bytes]]:
        for index in range((size + chunk_size - 1) // chunk_size):
            chunk = await self.store.read_chunk(data_id, index)
            if chunk is None:
                raise ReplicaUnavailable(
                    f"chunk {index} of body {data_id.hex()} is missing locally"
                )
            yield index, chunk
