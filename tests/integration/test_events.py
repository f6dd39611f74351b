"""Event notifications on a real cluster: object-created/removed events of a
bucket arrive in per-key order, at least once from a cursor, across the SIGKILL
of the node serving the stream and of a key's home node; bad input is refused
with a clear error; `tristore events tail` prints what the SDK yields."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.integration.cluster import DevCluster, wait_until
from tristore import errors
from tristore.client import Client
from tristore.events import CREATED_PUT, REMOVED_DELETE, REMOVED_MARKER, Event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Ident = tuple[str, str, str]  # key, version id, event name


def _ident(e: Event) -> Ident:
    return (e.key, e.version_id, e.name)


def collect(
    c: Client,
    bucket: str,
    until: Callable[[list[Event]], bool],
    *,
    cursor: str | None = None,
    from_start: bool = False,
    prefix: str = "",
    timeout: float = 30.0,
) -> tuple[list[Event], str]:
    """Events of a subscription until ``until(events)`` or ``timeout`` seconds
    (heartbeats every 0.2 s keep the time checked), and the last cursor seen."""
    events: list[Event] = []
    last = ""
    deadline = time.monotonic() + timeout
    stream = c.subscribe_events(
        bucket, prefix, cursor=cursor, from_start=from_start, heartbeats=True, heartbeat_s=0.2
    )
    try:
        for m in stream:
            last = m.cursor
            if isinstance(m, Event):
                events.append(m)
            if until(events) or time.monotonic() > deadline:
                break
    finally:
        stream.close()  # type: ignore[attr-defined]
    return events, last


def start_cursor(c: Client, bucket: str) -> str:
    """The cursor of "now": the first message of a new subscription."""
    stream = c.subscribe_events(bucket, heartbeats=True)
    try:
        return next(stream).cursor
    finally:
        stream.close()  # type: ignore[attr-defined]


def have_all(expected: set[Ident]) -> Callable[[list[Event]], bool]:
    return lambda events: expected <= {_ident(e) for e in events}


def per_key(events: list[Event]) -> dict[str, list[tuple[str, str]]]:
    """Each key's (name, version id) in arrival order, repeats left out."""
    out: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        seq = out.setdefault(e.key, [])
        if (e.name, e.version_id) not in seq:
            seq.append((e.name, e.version_id))
    return out


def test_puts_overwrites_and_deletes_arrive_in_per_key_order(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("ev-order")
        c.put_bucket_versioning("ev-order", "Enabled")
        c.create_bucket("ev-other")
        c.create_bucket("ev-plain")  # unversioned
        cursor = start_cursor(c, "ev-order")
        plain_cursor = start_cursor(c, "ev-plain")

        expected: dict[str, list[tuple[str, str]]] = {}
        for round_ in range(3):
            for i in range(12):
                key = f"logs/k{i}"
                info = c.put_object("ev-order", key, f"{key} v{round_}".encode())
                expected.setdefault(key, []).append((CREATED_PUT, info.version_id))
                c.put_object("ev-other", key, b"another bucket")  # never seen
        for i in range(0, 12, 3):
            key = f"logs/k{i}"
            marker = c.delete_object("ev-order", key)
            expected[key].append((REMOVED_MARKER, marker.version_id))
        for i in range(1, 12, 3):
            key = f"logs/k{i}"
            oldest = expected[key][0][1]
            c.delete_object("ev-order", key, version_id=oldest)
            expected[key].append((REMOVED_DELETE, oldest))
        outside = c.put_object("ev-order", "other/x", b"outside the prefix")
        # An edit is no event: a key of the same change log, written after it,
        # arrives after the edit would have.
        c.put_object_tagging("ev-order", "logs/k2", {"edited": "yes"})
        log_of_k2 = cluster.homes("ev-order", "logs/k2")[0]
        sentinel = next(
            k
            for k in (f"logs/zz{i}" for i in range(1000))
            if cluster.homes("ev-order", k)[0] == log_of_k2
        )
        expected[sentinel] = [(CREATED_PUT, c.put_object("ev-order", sentinel, b"s").version_id)]

        want = {(k, vid, name) for k, seq in expected.items() for name, vid in seq}
        events, _ = collect(c, "ev-order", have_all(want), cursor=cursor, prefix="logs/")
        assert {_ident(e) for e in events} == want  # nothing missing, nothing else
        assert per_key(events) == expected
        for e in events:
            assert e.bucket == "ev-order" and e.node == cluster.homes("ev-order", e.key)[0]
            assert len(e.sequencer) == 32 and e.cursor
        created = [e for e in events if e.name == CREATED_PUT]
        assert all(e.size > 0 and len(e.etag) == 32 for e in created)
        # Sequencers order each key's events.
        for key in expected:
            mine = [e.sequencer for e in events if e.key == key]
            assert mine == sorted(mine), key

        # Without the prefix the key outside it comes too (and still no edit).
        want_all = want | {("other/x", outside.version_id, CREATED_PUT)}
        everything, _ = collect(c, "ev-order", have_all(want_all), cursor=cursor)
        assert {_ident(e) for e in everything} == want_all

        # An unversioned bucket: the null version is created, replaced, deleted.
        c.put_object("ev-plain", "p", b"1")
        c.put_object("ev-plain", "p", b"22")
        c.delete_object("ev-plain", "p")
        plain, _ = collect(c, "ev-plain", lambda ev: len(ev) >= 3, cursor=plain_cursor)
        assert [(e.name, e.version_id, e.size) for e in plain] == [
            (CREATED_PUT, "null", 1),
            (CREATED_PUT, "null", 2),
            (REMOVED_DELETE, "null", 0),
        ]


def test_resuming_from_a_mid_stream_cursor_delivers_the_rest(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("ev-resume")
        c.put_bucket_versioning("ev-resume", "Enabled")
        cursor = start_cursor(c, "ev-resume")
        want: list[Ident] = []
        for i in range(40):
            info = c.put_object("ev-resume", f"k{i % 15}", f"v{i}".encode())
            want.append((f"k{i % 15}", info.version_id, CREATED_PUT))
        first, _ = collect(c, "ev-resume", have_all(set(want)), cursor=cursor)
        assert {_ident(e) for e in first} == set(want)
        for cut in (0, 17, len(first) - 1):
            rest = {_ident(e) for e in first[cut + 1 :]}
            again, _ = collect(c, "ev-resume", have_all(rest), cursor=first[cut].cursor)
            got = {_ident(e) for e in again}
            assert rest <= got, f"resuming after event {cut} missed {rest - got}"
            assert got <= set(want)
            # At least once, not everything again: what came before the cut
            # comes back only as part of the same change-log entry.
            same_entry = (first[cut].node, first[cut].seq)
            before = {_ident(e) for e in first[: cut + 1] if (e.node, e.seq) != same_entry}
            assert not (got & before - rest)
        # The last cursor of a stream resumes with nothing new to say.
        tail, last = collect(c, "ev-resume", lambda ev: False, cursor=first[-1].cursor, timeout=2)
        assert tail == [] and last


def test_bad_cursor_and_unknown_bucket_are_refused(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("ev-bad")
        c.create_bucket("ev-bad2")
        good = start_cursor(c, "ev-bad")
        cases: list[tuple[str, str | None, type[errors.TristoreError], str]] = [
            ("ev-missing", None, errors.NoSuchBucket, "ev-missing"),
            ("ev-bad", "not-a-cursor", errors.InvalidArgument, "damaged or truncated"),
            ("ev-bad", good[:-6], errors.InvalidArgument, "damaged or truncated"),
            ("ev-bad2", good, errors.InvalidArgument, "another bucket than 'ev-bad2'"),
        ]
        for bucket, cursor, exc, text in cases:
            with pytest.raises(exc, match=text):
                collect(c, bucket, lambda ev: True, cursor=cursor, timeout=10)
    proc = cluster.cli("events", "tail", "s3://ev-bad", "--cursor", "zzz", check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("InvalidArgument: cursor 'zzz' is damaged")
    proc = cluster.cli("events", "tail", "s3://ev-nobucket", "--timeout", "5", check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("NoSuchBucket: ")


def test_cli_events_tail_limit_json(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("ev-cli")
        c.put_bucket_versioning("ev-cli", "Enabled")
        infos = [c.put_object("ev-cli", f"f{i}", b"x" * (i + 1)) for i in range(3)]
        marker = c.delete_object("ev-cli", "f0")
    proc = cluster.cli("events", "tail", "s3://ev-cli", "--from-start", "--limit", "2", "--json")
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(lines) == 2
    assert set(lines[0]) == {
        "name",
        "bucket",
        "key",
        "version_id",
        "size",
        "etag",
        "sequencer",
        "event_time",
        "node",
        "seq",
        "cursor",
    }
    stderr = proc.stderr.decode()
    assert stderr.startswith("cursor: ") and stderr.split()[1] == lines[-1]["cursor"]
    # The rest, resumed from the last line's cursor (at least once: a repeat is allowed).
    proc = cluster.cli(
        "events", "tail", "ev-cli", "--cursor", lines[-1]["cursor"], "--limit", "2", "--json"
    )
    more = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    seen = {(x["key"], x["version_id"], x["name"]) for x in lines + more}
    want = {(f"f{i}", info.version_id, CREATED_PUT) for i, info in enumerate(infos)}
    want.add(("f0", marker.version_id, REMOVED_MARKER))
    assert seen == want
    # Text lines, and --timeout ends a quiet tail with status 0.
    proc = cluster.cli("events", "tail", "s3://ev-cli/f1", "--from-start", "--timeout", "3")
    [line] = proc.stdout.decode().splitlines()
    assert line.split()[2:] == [CREATED_PUT, "2", infos[1].version_id, "f1"]


def serving_node(cluster: DevCluster) -> str:
    """The one node that serves an event stream now (tristore_event_streams)."""
    found: list[str] = []

    def one() -> bool:
        found[:] = [
            n.name
            for n in cluster.config.nodes
            if cluster.metric(n.name, "tristore_event_streams") > 0
        ]
        return len(found) == 1

    wait_until(one, 10, what="exactly one node serving an event stream")
    return found[0]


def test_sigkill_of_the_serving_node_resumes_on_another_with_nothing_missing(
    own_cluster: DevCluster,
) -> None:
    cluster = own_cluster
    want: set[Ident] = set()
    with cluster.client() as c:
        c.create_bucket("ev-kill")
        cursor = start_cursor(c, "ev-kill")
        for i in range(30):
            info = c.put_object("ev-kill", f"a{i}", b"before")
            want.add((f"a{i}", info.version_id, CREATED_PUT))
        got: list[Event] = []
        killed = ""
        deadline = time.monotonic() + 90
        stream = c.subscribe_events("ev-kill", cursor=cursor, heartbeats=True, heartbeat_s=0.2)
        try:
            for m in stream:
                if isinstance(m, Event):
                    got.append(m)
                if len(got) >= 10 and not killed:
                    # SIGKILL the node this stream comes from; the SDK goes on
                    # elsewhere from the last cursor it received.
                    killed = serving_node(cluster)
                    cluster.kill(killed, "KILL")
                    for i in range(30):
                        info = c.put_object("ev-kill", f"b{i}", b"while down")
                        want.add((f"b{i}", info.version_id, CREATED_PUT))
                    # Its own keys' events are in its log (and in its hints):
                    # they come when it is back.
                    cluster.start(killed)
                if want <= {_ident(e) for e in got} or time.monotonic() > deadline:
                    break
        finally:
            stream.close()  # type: ignore[attr-defined]
    assert killed
    missing = want - {_ident(e) for e in got}
    assert not missing, f"{len(missing)} events never arrived: {sorted(missing)[:5]}"
    assert {_ident(e) for e in got} == want
    assert per_key(got) == {k: [(n, v)] for k, v, n in want}


def test_an_event_written_while_the_key_home_was_down_arrives_after_it_returns(
    own_cluster: DevCluster,
) -> None:
    cluster = own_cluster
    home = "b1"
    key, gone = [
        k for k in (f"h{i}" for i in range(1000)) if cluster.homes("ev-home", k)[0] == home
    ][:2]
    other = next(
        k for k in (f"o{i}" for i in range(1000)) if cluster.homes("ev-home", k)[0] != home
    )
    with cluster.client() as c:
        c.create_bucket("ev-home")
        before = start_cursor(c, "ev-home")
        cluster.kill(home, "KILL")
        wait_until(lambda: home not in cluster.up_names(), 20, what=f"{home} down")
        # A subscription begun while the home is down ("from now") gets it too.
        during = start_cursor(c, "ev-home")
        late = c.put_object("ev-home", key, b"written while its home was down")
        now = c.put_object("ev-home", other, b"its home is up")
        # Put and deleted while the home is down: the stand-in keeps only the
        # delete, and that is what comes (the key's final state; see docs/architecture.md).
        c.put_object("ev-home", gone, b"short-lived")
        c.delete_object("ev-home", gone)
        early, _ = collect(c, "ev-home", lambda ev: False, cursor=before, timeout=3)
        assert [_ident(e) for e in early] == [(other, now.version_id, CREATED_PUT)]
        cluster.start(home)
        want = {
            (key, late.version_id, CREATED_PUT),
            (other, now.version_id, CREATED_PUT),
            (gone, "null", REMOVED_DELETE),
        }
        for cursor in (before, during):
            events, _ = collect(c, "ev-home", have_all(want), cursor=cursor, timeout=60)
            assert want <= {_ident(e) for e in events} <= want | {(gone, "null", CREATED_PUT)}
            assert [e.node for e in events if e.key == key] == [home]
            assert [e.name for e in events if e.key == gone][-1] == REMOVED_DELETE
