"""Hinted handoff: give writes held for an absent home node back to it.

While a home node is down, the next node of its AZ takes its writes and keeps a
hint. This loop offers everything held for a hinted key to its home once the home
answers again (one merging commit: the home keeps, record by record, whatever
is newer, so a repeat is harmless), then drops the hint and the stand-in copy
in one synced batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from node.metrics import HINTS_HANDED_OFF
from node.peers import Peers, ReplicaUnavailable
from node.replica_store import ReplicaStore
from tristore.errors import TristoreError
from tristore.model import Change
from tristore.placement import Placer

log = logging.getLogger(__name__)


class HintedHandoff:
    def __init__(
        self, store: ReplicaStore, peers: Peers, placer: Placer, interval_s: float
    ) -> None:
        self.store = store
        self.peers = peers
        self.placer = placer
        self.interval_s = interval_s

    async def run_forever(self) -> None:
        while True:
            try:
                if self.store.hints_pending:
                    await self.run_once()
            except Exception:
                log.exception("hinted handoff round failed")
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> int:
        """Hand back what can be handed back now; returns how many hints went."""
        done = 0
        for home in await self.store.hint_homes():
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
        while batch := await self.store.hints_for(home):
            for bucket, key, stamp in batch:
                # Everything held here for the key goes over in one merge: the
                # home keeps what is newer on its side, part by part.
                state = await self.store.key_state(bucket, key)
                bodies = {
                    v.data_id: v
                    for v in (state.head, *state.versions)
                    if v is not None and v.data_id
                }
                for data_id, v in bodies.items():
                    await target.stage(data_id, self._chunks(data_id, v.size, v.chunk_size))
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
                homes = {azr.home.name for azr in self.placer.place(bucket, key).azs}
                await self.store.drop_hint(
                    home, bucket, key, stamp, drop_copy=self.store_name not in homes
                )
                HINTS_HANDED_OFF.inc()
                done += 1
            log.info("handed %d hinted writes back to %s", done, home)
        return done

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
