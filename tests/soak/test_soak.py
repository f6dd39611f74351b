"""The long soak (issue 14, point 6): mixed traffic on two clusters under a
rotating nemesis, then every guarantee checked, and each process's memory,
open files and disk reported over time.

Two clusters (``dev up --clusters 2``): east takes the traffic of
tests/soak/workload.py (linearizable registers in an unversioned and a
versioned bucket, large objects and two-part multipart uploads, versions and
delete markers of a bucket that replicates to west, two event subscribers)
while tests/soak/nemesis.py kills nodes, witnesses, a replicator and west's
nodes, skews clocks, partitions an AZ and fills a node's disk, one fault at
a time. Then, with every fault healed:

- no process died except by the nemesis' hand (pids followed all along);
- every call failed only with a code that says "not now" (FAULT_CODES);
- the histories of the registers are linearizable, key by key, including a
  last read of every key (durability of the last acknowledged write);
- every large object reads back as its last acknowledged body; every
  acknowledged version and marker is at the source with its body, and at the
  destination (and ``tristore replication verify`` finds no difference);
- each event subscriber saw every acknowledged change of its prefix, nothing
  nobody made, and each key's versions in acknowledged order by sequencer;
- the resource report: RSS, open fds and data-dir bytes of every process,
  sampled every few seconds, with the slope of a line fitted over the second
  half, printed and written as JSON and a PNG. Slopes are reported, never
  asserted (that is a benchmark's job).

``TRISTORE_SOAK_MINUTES`` (default 2, what ``make test`` runs) sets the
traffic's length; ``make soak`` runs 30 minutes and writes
``bench/results/soak.json`` and ``soak.png`` (``TRISTORE_SOAK_OUT``: the
directory of both; default: the test's temporary directory). Partitions and a
full disk need root (iptables and cgroup v2, mount); without it those kinds
are left out and the report says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import netfaults
from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.linearizability import READ, Op, check
from tests.netfaults import NetFaults
from tests.robustness.test_linearizable import WIDE_SKEW, read_value
from tests.robustness.test_partitions import answers, side_of
from tests.soak import plot
from tests.soak.nemesis import DiskFull, Nemesis
from tests.soak.resources import Proc, Sampler
from tests.soak.workload import (
    BLOB_BUCKET,
    DEST_BUCKET,
    EVENT_PREFIXES,
    LIN_BUCKETS,
    LIN_KEYS,
    VERSIONS_BUCKET,
    Blobs,
    Registers,
    Subscriber,
    Traffic,
    Versions,
    wait_for,
)
from tristore.cli import dev
from tristore.replication import Destination, Rule

MINUTES = float(os.environ.get("TRISTORE_SOAK_MINUTES") or 2)
SHORT = MINUTES <= 5
OUT = os.environ.get("TRISTORE_SOAK_OUT")
#: Where the report of a failed run is kept too (pytest's temporary
#: directories are deleted by later runs on the machine).
HISTORIES = Path(os.environ.get("TRISTORE_HISTORIES", "/tmp/tristore-histories"))
#: How long past the traffic's end the nemesis may go to finish one rotation
#: of every kind (restarts are slow on a loaded machine).
NEMESIS_SLACK_S = 240.0

pytestmark = [pytest.mark.soak, pytest.mark.timeout(int(MINUTES * 60 + NEMESIS_SLACK_S + 1200))]

MiB = 1024 * 1024
DISK_RESERVE = 16 * MiB
TMPFS_SIZE = 768 * MiB
#: Every process of both clusters starts (and restarts) with these.
ENV = {
    # Clocks of east's nodes run seconds apart under the nemesis.
    **WIDE_SKEW,
    "TRISTORE_NODE_DISK_RESERVE_BYTES": str(DISK_RESERVE),
    "TRISTORE_NODE_DISK_RESUME_BYTES": str(DISK_RESERVE // 2),
    "TRISTORE_NODE_DISK_CHECK_S": "0.2",
    # Superseded bodies go after a minute, not ten: a steady state within
    # the warm-up half of a 30-minute run (no read here lasts a minute).
    "TRISTORE_NODE_GC_GRACE_S": "60",
    # Change-log entries and the markers of removed versions are kept ten
    # minutes, not a day: past that, what the traffic adds, collection takes
    # away (the event subscribers keep up; nothing here looks further back).
    "TRISTORE_NODE_CHANGELOG_RETENTION_S": "600",
    "TRISTORE_NODE_TOMBSTONE_RETENTION_S": "600",
}
#: The east node whose data directory is a small tmpfs (never killed).
DISK_NODE = "b2"


@dataclass
class Soak:
    east: DevCluster
    west: DevCluster
    netfaults: NetFaults | None
    disk: DiskFull | None
    unavailable: dict[str, str]
    #: Where the report goes; and where a failed run's report and history are kept.
    out: Path
    keep: Path


@pytest.fixture
def soak(tmp_path: Path) -> Iterator[Soak]:
    east = start_cluster(tmp_path, "--clusters", "2", extra_env=ENV)
    west = east.clusters["west"]
    mounted: Path | None = None
    nf: NetFaults | None = None
    unavailable: dict[str, str] = {}
    try:
        _buckets(east, west)
        disk, mounted = _small_disk(east, unavailable)
        why = netfaults.unavailable()
        if why:
            unavailable["partition"] = why
        else:
            procs = {str(p["name"]): p for p in east.status()}
            by_az: dict[str, list[dict[str, object]]] = {}
            for n in east.config.nodes:
                by_az.setdefault(n.az, []).append(procs[east.proc_name(n.name)])
            nf = NetFaults([side_of(az, ps) for az, ps in by_az.items()])
            nf.start()
            # Every connection was cut once: wait until east answers again.
            wait_until(answers(east), 60, 0.5, "east to answer after the reconnect")
        out = Path(OUT).resolve() if OUT else tmp_path / "report"
        keep = Path(OUT).resolve() if OUT else HISTORIES / time.strftime("soak-%Y%m%d-%H%M%S")
        yield Soak(east, west, nf, disk, unavailable, out, keep)
    finally:
        if nf is not None:
            nf.close()
        east.down()
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True, check=False)


def _buckets(east: DevCluster, west: DevCluster) -> None:
    with east.client() as e, west.client() as w:
        for b in (*LIN_BUCKETS, BLOB_BUCKET, VERSIONS_BUCKET):
            e.create_bucket(b)
        e.put_bucket_versioning(LIN_BUCKETS[1], "Enabled")
        e.put_bucket_versioning(VERSIONS_BUCKET, "Enabled")
        w.create_bucket(DEST_BUCKET)
        w.put_bucket_versioning(DEST_BUCKET, "Enabled")
        e.put_bucket_replication(
            VERSIONS_BUCKET, [Rule("all", (Destination("west", DEST_BUCKET),), delete_markers=True)]
        )


def _small_disk(
    east: DevCluster, unavailable: dict[str, str]
) -> tuple[DiskFull | None, Path | None]:
    """Move DISK_NODE's data onto a tmpfs of its own (as
    tests/integration/test_disk_full.py does); None where mounting is not allowed."""
    if os.geteuid() != 0:
        unavailable["disk-full"] = "not root: cannot mount a tmpfs"
        return None, None
    data = east.config.data_dir_for(DISK_NODE)
    east.kill(DISK_NODE, "TERM")
    moved = data.with_name(data.name + ".before")
    data.rename(moved)
    data.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        data.rmdir()
        moved.rename(data)
        unavailable["disk-full"] = f"mounting a tmpfs failed: {done.stderr.strip()}"
        east.start(DISK_NODE, extra_env=ENV)
        return None, None
    shutil.copytree(moved, data, dirs_exist_ok=True)
    east.start(DISK_NODE, extra_env=ENV)
    return DiskFull(DISK_NODE, data, DISK_RESERVE), data


def _procs(east: DevCluster) -> tuple[list[Proc], Any]:
    d = dev.resolve_dir(str(east.dir))
    out = []
    for p in east.status():
        name = str(p["name"])
        cluster = east.cluster(str(p["cluster"]))
        local = name.rpartition("/")[2]
        role = str(p["role"])
        data = None if role == "witness" else cluster.config.data_dir_for(local)
        out.append(Proc(name, role, str(p["cluster"]), data))
    return out, lambda name: dev.running_pid(d, name)


def test_soak(soak: Soak) -> None:
    east, west = soak.east, soak.west
    seconds = MINUTES * 60
    procs, pid_of = _procs(east)
    sampler = Sampler(procs, pid_of, interval_s=2.0 if SHORT else 5.0)
    traffic = Traffic()
    registers = Registers(east, traffic, clients=4, pace_s=0.1)
    blobs = Blobs(east, traffic, pace_s=1.0)
    versions = Versions(east, west, traffic, pace_s=0.2, prune_s=10.0)
    subscribers = [Subscriber(east, traffic, VERSIONS_BUCKET, p) for p in EVENT_PREFIXES]
    nemesis = Nemesis(
        east,
        west,
        sampler,
        ENV,
        down_s=3.0 if SHORT else 5.0,
        fault_s=4.0 if SHORT else 12.0,
        gap_s=2.0 if SHORT else 10.0,
        netfaults=soak.netfaults,
        disk=soak.disk,
        unavailable=dict(soak.unavailable),
    )
    uptime_before = _uptime()

    for s in subscribers:
        s.thread().start()
    for s in subscribers:
        assert s.started.wait(60), f"the event stream of {s.prefix} never started"
    threads = [*registers.threads(), blobs.thread(), *versions.threads()]
    sampler.start()
    registers.rec.t0 = time.monotonic()  # epochs count from here
    for t in threads:
        t.start()
    started = time.monotonic()
    try:
        nemesis.run(until=started + seconds, hard_deadline=started + seconds + NEMESIS_SLACK_S)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
    finally:
        traffic.stop.set()
        duration = sampler.now()
        sampler.stop()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), f"{t.name} did not stop"

    failures: list[str] = []
    checks: dict[str, object] = {}
    try:
        _settle(east, west, failures)
        sampler.check_all_running()
        failures += [f"process {n} at {t:.0f} s: {w}" for t, n, w in sampler.unexpected]
        failures += [f"sampler: {e}" for e in sampler.errors]
        failures += [f"nemesis: {e}" for e in nemesis.errors]
        failures += [f"worker crashed: {c}" for c in traffic.crashed]
        failures += traffic.problems
        if traffic.unexpected_failures():
            failures.append(f"calls failed unexpectedly: {traffic.unexpected_failures()}")
        done = {f.kind for f in nemesis.faults}
        if set(nemesis.kinds) - done:
            failures.append(f"faults never done: {sorted(set(nemesis.kinds) - done)}")
        if soak.disk is not None and not any(f.felt for f in nemesis.faults):
            failures.append(f"{DISK_NODE} never said its disk was full")
        checks |= _check_registers(registers, east, soak.keep, failures)
        checks |= _check_data(blobs, versions, east, west, failures)
        faulted = _home_faulted(east, nemesis, sampler.wall0)
        checks |= _check_events(versions, subscribers, faulted, failures)
    finally:
        for s in subscribers:
            s.done.set()
        result = _report(
            soak, sampler, nemesis, traffic, registers, blobs, versions, subscribers,
            duration, checks, failures, uptime_before,
        )  # fmt: skip
    assert not failures, "\n".join(failures[:40])
    assert result["processes"]


def _settle(east: DevCluster, west: DevCluster, failures: list[str]) -> None:
    """Every process up and serving, hints handed back, on both clusters."""
    try:
        wait_until(lambda: all(p["up"] for p in east.status()), 120, 1.0, "every process up")
        east.wait_hints_drained(180)
        west.wait_hints_drained(180)
    except AssertionError as exc:
        failures.append(f"the clusters did not settle: {exc}")


def _check_registers(
    registers: Registers, east: DevCluster, out: Path, failures: list[str]
) -> dict[str, object]:
    """A last read of every key not retired yet, then the whole history checked."""
    rec = registers.rec
    with east.client() as c:
        for epoch in range(registers.epoch() + 1):
            if epoch in registers.retired:
                continue
            bucket = LIN_BUCKETS[epoch % 2]
            for name in LIN_KEYS:
                _, key = registers.where(epoch, name)
                started = rec.now()
                got = read_value(c, rec, bucket, key, 0)  # by GET, with the SDK's retries
                rec.add(Op(key, READ, got, started, rec.now(), client=-2))
    ops = list(rec.ops)
    verdict = check(ops)
    if not verdict.ok:
        out.mkdir(parents=True, exist_ok=True)
        dump = out / f"soak-history-{int(time.time())}.json"
        dump.write_text(json.dumps([dataclasses.asdict(o) for o in ops]))
        failures.append(f"not linearizable: {verdict.explanation} (history: {dump})")
    keys = {o.key for o in ops}
    writes = sum(1 for o in ops if o.kind != READ and o.ok)
    if writes < 20:
        failures.append(f"only {writes} register writes were acknowledged")
    return {
        "linearizable": verdict.ok,
        "register_keys": len(keys),
        "register_ops": len(ops),
        "register_writes_acked": writes,
        "epochs_retired": len(registers.retired),
    }


def _check_data(
    blobs: Blobs, versions: Versions, east: DevCluster, west: DevCluster, failures: list[str]
) -> dict[str, object]:
    with east.client() as e, west.client() as w:
        failures += blobs.check_final(e)
        failures += versions.check_source(e)
        caught_up = wait_for(lambda: not versions.missing_at_destination(w), 240, 2.0)
        missing = versions.missing_at_destination(w)
    if not caught_up:
        failures.append(f"{len(missing)} acknowledged versions never reached west: {missing[:5]}")
    verified = wait_for(lambda: _verify(east, west) == 0, 180, 3.0)
    if not verified:
        failures.append("`replication verify` still finds differences")
    return {
        "blobs_written": blobs.written,
        "blobs_multipart": blobs.multipart,
        "blobs_mib": round(blobs.bytes / MiB, 1),
        "blob_reads": blobs.reads,
        "versions_acked": len(versions.acked),
        "versions_pruned": len(versions.pruned),
        "versions_checked": versions.checked,
        "replicated": caught_up,
        "replication_verify_clean": verified,
    }


def _verify(east: DevCluster, west: DevCluster) -> int:
    proc = east.cli(
        "replication", "verify", f"s3://{VERSIONS_BUCKET}",
        "--to-endpoint", f"west={west.endpoint}", check=False, timeout=120,
    )  # fmt: skip
    return proc.returncode


#: How long before a fault and after its heal a key's first-AZ home may miss
#: a version (it is marked down late, and collects its hints a while after).
HOME_FAULT_MARGIN_S = 15.0


def _home_faulted(east: DevCluster, nemesis: Nemesis, wall0: float) -> Any:
    """Whether a fault hit a key's first-AZ home of VERSIONS_BUCKET around a time."""
    az_of = {n.name: n.az for n in east.config.nodes}
    homes: dict[str, str] = {}

    def faulted(key: str, ms: int) -> bool:
        home = homes.setdefault(key, east.homes(VERSIONS_BUCKET, key)[0])
        t = ms / 1000 - wall0
        return any(
            f.began_s - HOME_FAULT_MARGIN_S <= t <= f.healed_s + HOME_FAULT_MARGIN_S
            and (
                (f.kind in ("kill", "skew", "disk-full") and f.target == home)
                or (f.kind == "partition" and f.target == az_of[home])
            )
            for f in nemesis.faults
        )

    return faulted


def _check_events(
    versions: Versions,
    subscribers: list[Subscriber],
    home_faulted: Any,
    failures: list[str],
) -> dict[str, object]:
    out: dict[str, object] = {}
    for s in subscribers:
        want = versions.expected_events(s.prefix, home_faulted)
        wait_for(lambda: want <= s.seen(), 180, 1.0)  # noqa: B023 - called here
        missing = want - s.seen()
        if missing:
            failures.append(
                f"subscriber {s.prefix}: {len(missing)} acknowledged changes never came: "
                f"{sorted(missing)[:5]}"
            )
        failures += [
            f"subscriber {s.prefix}: {p}" for p in versions.check_events(s.prefix, s.events)
        ]
        out[f"events {s.prefix}"] = {
            "expected": len(want),
            "received": len(s.events),
            "distinct": len(s.seen()),
            "stream_restarts": s.resumed,
            "late_arrivals": versions.late_arrivals(s.events),
            "removals_only": versions.removals_only(s.prefix, s.events),
        }
    return out


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _report(
    soak: Soak,
    sampler: Sampler,
    nemesis: Nemesis,
    traffic: Traffic,
    registers: Registers,
    blobs: Blobs,
    versions: Versions,
    subscribers: list[Subscriber],
    duration: float,
    checks: dict[str, object],
    failures: list[str],
    uptime_before: str,
) -> dict[str, Any]:
    """The JSON and the PNG, and the slopes printed (pytest -s shows them)."""
    processes = sampler.report(duration)
    result: dict[str, Any] = {
        "meta": {
            "minutes": MINUTES,
            "duration_s": round(duration, 1),
            "interval_s": sampler.interval_s,
            "started_unix_ms": round(sampler.wall0 * 1000),
            "fit": "least squares over the second half, samples of the pid that covers most of it",
            "kinds": nemesis.kinds,
            "unavailable": nemesis.unavailable,
            "machine": {"uptime_before": uptime_before, "uptime_after": _uptime()},
        },
        "ok": not failures,
        "failures": failures,
        "checks": checks,
        "calls": dict(traffic.calls),
        "failed_calls": {f"{k}: {c}": n for (k, c), n in sorted(traffic.failed.items())},
        "faults": [f.to_json() for f in nemesis.faults],
        "cpu_s": round(sum(float(p["cpu_s"]) for p in processes), 1),
        "processes": processes,
        "series": sampler.raw(),
    }
    for where in {soak.out, soak.keep} if failures else {soak.out}:
        where.mkdir(parents=True, exist_ok=True)
        (where / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
        plot.plot(result, where / "soak.png")
    print(f"\nsoak: {MINUTES:g} min, {len(nemesis.faults)} faults "
          f"({', '.join(sorted({f.kind for f in nemesis.faults}))}), "
          f"calls {dict(traffic.calls)}, failed {result['failed_calls']}")  # fmt: skip
    print(f"checks: {json.dumps(checks)}")
    print(f"{'process':<10} {'restarts':>8} {'RSS MiB':>8} {'MiB/h':>8} {'fds':>5} "
          f"{'fds/h':>7} {'disk MiB':>9} {'MiB/h':>8}")  # fmt: skip
    for p in processes:
        print(
            f"{p['name']:<10} {p['restarts']:>8} {_n(p['rss_mib'])} {_n(p['rss_mib_per_h'])} "
            f"{_n(p['fds'], 5)} {_n(p['fds_per_h'], 7)} {_n(p['disk_mib'], 9)} "
            f"{_n(p['disk_mib_per_h'])}"
        )
    cpu = sum(float(p["cpu_s"]) for p in processes)
    print(f"CPU of every process: {cpu:.0f} s over {duration:.0f} s ({cpu / duration:.2f} cores)")
    print(f"report: {soak.out / 'soak.json'}, {soak.out / 'soak.png'}")
    if failures:
        print(f"kept, with the history if it did not check: {soak.keep}")
    return result


def _n(value: object, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:>{width}.1f}"
    return f"{value!s:>{width}}"
