"""Waiting for a wakeup with a deadline, for the loops that sleep until
something happens instead of looking every so often."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def wait_for_any(events: Iterable[asyncio.Event], timeout: float | None) -> bool:
    """Wait until one of ``events`` is set, or ``timeout`` seconds pass; True
    if one was set. Not ``asyncio.wait_for``: on Python 3.11 it drops a
    cancellation that arrives as the awaited event is set, and a loop waiting
    so would then never stop (seen: a node stopping while its peers' channels
    changed state waited forever for its probe loop)."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return bool(done)
