"""What every process of the soak's clusters holds over time, and whether it
keeps growing: resident memory (VmRSS), open file descriptors (entries of
/proc/PID/fd) and the bytes of its data directory (blocks allocated, as ``du``
counts them), sampled every few seconds by a thread of the test.

The same thread watches that no process dies unless the nemesis killed it: it
knows each process's pid, and the nemesis says which process it is handling
(killing and starting again) and what its new pid is.

The report fits a line, by least squares, through each process's samples
after warm-up (the second half of the run) and gives the slopes an hour. A
process the nemesis restarted in that half starts again from little memory;
the fit takes the samples of the pid that covers most of the window, and says
how many there were.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
#: A file the nemesis writes into a data directory to fill its disk: not the
#: process's own bytes.
FILLER = "soak-filler"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    """A process of the soak: its launcher name (``east/a1``), role and data dir."""

    name: str
    role: str
    cluster: str
    data_dir: Path | None


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the sampler started
    pid: int
    rss: int  # bytes
    fds: int
    disk: int  # bytes
    cpu: float  # seconds of CPU (utime + stime) since the process started


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def dir_bytes(path: Path | None) -> int:
    """Bytes allocated to the files under ``path`` (0 when it does not
    exist), the nemesis' filler left out."""
    if path is None:
        return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            if f == FILLER:
                continue
            with contextlib.suppress(OSError):  # removed meanwhile (compaction, GC)
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def fit(points: Iterable[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through ``points`` (None under 3 points)."""
    pts = list(points)
    if len(pts) < 3:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


@dataclass
class Sampler:
    """Samples ``procs`` every ``interval_s`` in a thread of its own.

    ``pid_of(name)`` is the process's pid now (None while it is down)."""

    procs: list[Proc]
    pid_of: Callable[[str], int | None]
    interval_s: float
    series: dict[str, list[Sample]] = field(default_factory=dict)
    #: name -> the pid it must have (a process the nemesis is handling has none).
    expected: dict[str, int] = field(default_factory=dict)
    #: (seconds, name, what): a process down or with a pid nobody gave it.
    unexpected: list[tuple[float, str, str]] = field(default_factory=list)
    #: Exceptions of the sampling thread itself (each is a failure).
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()
        #: Wall-clock time of t0 (version ids and event sequencers are in it).
        self.wall0 = time.time()
        self.thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        for p in self.procs:
            pid = self.pid_of(p.name)
            if pid is None:
                raise AssertionError(f"{p.name} is not running at the start")
            self.expected[p.name] = pid
            self.series[p.name] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- the nemesis tells what it does ---------------------------------------

    def handling(self, name: str) -> None:
        """The nemesis is about to kill ``name``: its death is expected."""
        with self.lock:
            self.expected.pop(name, None)

    def handled(self, name: str) -> None:
        """The nemesis started ``name`` again: its new pid is the one to keep."""
        pid = self.pid_of(name)
        with self.lock:
            if pid is None:
                self.unexpected.append((self.now(), name, "not running after its restart"))
            else:
                self.expected[name] = pid

    # -- the thread -----------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(60)

    def _run(self) -> None:
        try:
            while True:
                self.sample_once()
                if self.stop_event.wait(self.interval_s):
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the test, never lost
            self.errors.append(repr(exc))

    def sample_once(self) -> None:
        for p in self.procs:
            with self.lock:
                want = self.expected.get(p.name)
            pid = self.pid_of(p.name)
            t = self.now()
            if want is not None and pid != want:
                with self.lock:
                    # Looked up again under the lock: the nemesis may have
                    # restarted it between the two reads.
                    if self.expected.get(p.name) == want:
                        what = "down" if pid is None else f"pid {pid}, not {want}"
                        self.unexpected.append((t, p.name, what))
                        self.expected.pop(p.name)
            if pid is None:
                continue
            rss, fds, cpu = rss_bytes(pid), open_fds(pid), cpu_seconds(pid)
            if rss is None or fds is None or cpu is None:
                continue  # it ended between the reads
            self.series[p.name].append(Sample(t, pid, rss, fds, dir_bytes(p.data_dir), cpu))

    def check_all_running(self) -> None:
        """At the end: every process runs with the pid it must have."""
        for p in self.procs:
            with self.lock:
                want = self.expected.get(p.name)
            pid = self.pid_of(p.name)
            if want is None or pid != want:
                self.unexpected.append((self.now(), p.name, f"at the end: pid {pid}, not {want}"))

    # -- the report -----------------------------------------------------------

    def report(self, duration_s: float) -> list[dict[str, Any]]:
        """Per process: restarts, last values, and the slopes an hour after
        warm-up (the second half of ``duration_s``)."""
        out: list[dict[str, Any]] = []
        half = duration_s / 2
        for p in self.procs:
            samples = self.series[p.name]
            window = [s for s in samples if s.t >= half]
            pids = [s.pid for s in window]
            kept = max(set(pids), key=pids.count) if pids else None
            fitted = [s for s in window if s.pid == kept]
            restarts = sum(1 for a, b in itertools.pairwise(samples) if a.pid != b.pid)

            def per_hour(
                get: Callable[[Sample], float], scale: float, pts: list[Sample]
            ) -> float | None:
                slope = fit((s.t, get(s)) for s in pts)
                return round(slope * 3600 / scale, 3) if slope is not None else None

            last = samples[-1] if samples else None
            # CPU of each incarnation: its last sample's less its first's.
            cpu = sum(
                max(s.cpu for s in samples if s.pid == pid)
                - min(s.cpu for s in samples if s.pid == pid)
                for pid in {s.pid for s in samples}
            )
            out.append(
                {
                    "name": p.name,
                    "role": p.role,
                    "cluster": p.cluster,
                    "samples": len(samples),
                    "cpu_s": round(cpu, 1),
                    "restarts": restarts,
                    "fit_samples": len(fitted),
                    "fit_from_s": round(fitted[0].t, 1) if fitted else None,
                    "rss_mib": round(last.rss / MiB, 1) if last else None,
                    "fds": last.fds if last else None,
                    "disk_mib": round(last.disk / MiB, 2) if last else None,
                    "rss_mib_per_h": per_hour(lambda s: s.rss, MiB, fitted),
                    "fds_per_h": per_hour(lambda s: s.fds, 1, fitted),
                    "disk_mib_per_h": per_hour(lambda s: s.disk, MiB, fitted),
                }
            )
        return out

    def raw(self) -> dict[str, list[list[float]]]:
        """Every sample: ``[t, pid, rss, fds, disk, cpu]`` lists by process name."""
        return {
            name: [[round(s.t, 2), s.pid, s.rss, s.fds, s.disk, round(s.cpu, 2)] for s in samples]
            for name, samples in self.series.items()
        }
