"""A one-line transfer progress bar for stderr (bytes, percent, rate).

It draws only on a terminal, only once a transfer has run for a moment (short
copies print nothing), and at most ten times a second, so it never slows a fast
transfer down or litters logs and pipes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

from tristore.cli.util import format_size

BAR_WIDTH = 24
#: Seconds between redraws (at most ~10 a second).
MIN_INTERVAL_S = 0.1
#: A transfer must have run this long before the bar appears.
SHOW_AFTER_S = 0.5


def render(
    done: int, total: int | None, elapsed_s: float, width: int = BAR_WIDTH, unit: str = ""
) -> str:
    """The bar's text, e.g. ``[#####.......]  42%  420.0 MiB / 1.0 GiB  85.3 MiB/s``;
    with a ``unit`` it counts things: ``[##......]  25%  250 / 1000 keys  50 keys/s``."""

    def fmt(n: float) -> str:
        return f"{n:.0f}" if unit else format_size(n)

    per = f" {unit}/s" if unit else "/s"
    rate = f"{fmt(done / elapsed_s)}{per}" if elapsed_s > 0 else f"-{per}"
    of = f" {unit}" if unit else ""
    if not total:
        return f"{fmt(done)}{of}  {rate}"
    fraction = min(max(done / total, 0.0), 1.0)
    filled = int(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    return f"[{bar}] {int(fraction * 100):3d}%  {fmt(done)} / {fmt(total)}{of}  {rate}"


class Progress:
    """Call with the running byte total (the SDK's ``progress`` callback shape),
    or :meth:`add` a chunk's size; :meth:`close` when done."""

    def __init__(
        self,
        total: int | None,
        out: IO[str],
        clock: Callable[[], float] = time.monotonic,
        show_after_s: float = SHOW_AFTER_S,
        min_interval_s: float = MIN_INTERVAL_S,
        unit: str = "",
    ) -> None:
        self.total = total
        self.unit = unit
        self.done = 0
        self._out = out
        self._clock = clock
        self._started = clock()
        self._last_draw = float("-inf")
        self._show_after = show_after_s
        self._interval = min_interval_s
        self._drawn_width = 0
        self._closed = False

    def __call__(self, done_total: int) -> None:
        self.done = done_total
        self._maybe_draw()

    def add(self, n: int) -> None:
        self.done += n
        self._maybe_draw()

    def _maybe_draw(self) -> None:
        if self._closed:
            return
        now = self._clock()
        if now - self._started < self._show_after or now - self._last_draw < self._interval:
            return
        self._last_draw = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        line = render(self.done, self.total, now - self._started, unit=self.unit)
        pad = max(self._drawn_width - len(line), 0)
        self._out.write("\r" + line + " " * pad)
        self._out.flush()
        self._drawn_width = len(line)

    def close(self) -> None:
        """Draw the final state and end the line, if the bar was ever shown.
        Closing again does nothing; once closed the bar never draws again."""
        if self._closed:
            return
        self._closed = True
        if self._drawn_width:
            self._draw(self._clock())
            self._out.write("\n")
            self._out.flush()


class _NoProgress(Progress):
    def _maybe_draw(self) -> None:
        return

    def close(self) -> None:
        return


def for_stderr(total: int | None, enabled: bool = True, unit: str = "") -> Progress:
    """A bar on stderr when it is a terminal; otherwise one that draws nothing."""
    if enabled and sys.stderr.isatty():
        return Progress(total, sys.stderr, unit=unit)
    return _NoProgress(total, sys.stderr)
