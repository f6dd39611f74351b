"""Multipart uploads nobody ends are aborted once old ([node] multipart_expiry_s),
and those of deleted buckets removed.

A client that dies between CreateMultipartUpload and Complete leaves the upload
and its parts on disk for good: S3 leaves that to a lifecycle rule
(AbortIncompleteMultipartUpload), MinIO expires them after a day by default.
Here one node of the cluster (the first by name of those up, by its own view)
looks through the uploads every ``multipart_expiry_check_s`` and aborts those
created more than ``multipart_expiry_s`` ago, as AbortMultipartUpload does. Two
nodes that both think themselves first only do the same aborts twice.

DeleteBucket succeeds with uploads in progress, as S3's does; from then on they
are not the bucket's (nor a new bucket's of the same name: see
``node.multipart._before_bucket``), and the same look removes them and their
parts, whether or not uploads expire.
"""

from __future__ import annotations

import asyncio
import logging

from node.metrics import MULTIPART_EXPIRED, MULTIPART_ORPHANED
from node.multipart import Multipart
from node.peers import Peers
from tristore.config import NodeSection

log = logging.getLogger(__name__)


class UploadExpiry:
    def __init__(self, multipart: Multipart, peers: Peers, cfg: NodeSection) -> None:
        self.multipart = multipart
        self.peers = peers
        self.cfg = cfg

    def _is_mine(self) -> bool:
        up = [n.name for n in self.peers.nodes if self.peers.is_up(n.name)]
        return bool(up) and min(up) == self.peers.me.name

    async def expire_once(self) -> tuple[int, int]:
        """Abort the uploads past the expiry, remove those of deleted buckets;
        returns how many of each."""
        before = None
        if self.cfg.multipart_expiry_s > 0:
            before = self.multipart.coord.clock.wall_ms() - int(self.cfg.multipart_expiry_s * 1000)
        expired, orphaned = await self.multipart.sweep(before)
        MULTIPART_EXPIRED.inc(expired)
        MULTIPART_ORPHANED.inc(orphaned)
        return expired, orphaned

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.multipart_expiry_check_s)
            if not self._is_mine():
                continue
            try:
                await self.expire_once()
            except Exception:
                log.exception("aborting expired multipart uploads failed")
