"""GETs of chunked bodies with read-ahead: parallel ReadData streams over the
holders must still deliver exactly the version the GET started on, in order,
across ranges, overwrites and a holder killed mid-stream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster
from tristore.client import RetryPolicy

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024
#: Segments of two chunks, four in flight: a body of 40 chunks is 20 segments.
#: A body stream silent for 3 s is given up (a frozen holder).
ENV = {
    "TRISTORE_NODE_CHUNK_SIZE": str(CHUNK),
    "TRISTORE_NODE_READ_AHEAD_CHUNKS": "8",
    "TRISTORE_NODE_STREAM_TIMEOUT_S": "3",
}


def _ahead(tmp: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp, extra_env=ENV)
    try:
        with cluster.client() as c:
            c.create_bucket("ahead")
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def ahead(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One cluster for the tests that read and write keys of their own."""
    yield from _ahead(tmp_path_factory.mktemp("ahead"))


@pytest.fixture
def ahead_alone(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster for a test that kills one of its nodes."""
    yield from _ahead(tmp_path)


def _coordinator(cluster: DevCluster, key: str) -> str:
    """The gRPC address of a node that holds no copy of ``key``: every chunk it
    serves comes from the holders over ReadData."""
    homes = set(cluster.homes("ahead", key))
    return next(n.grpc for n in cluster.config.nodes if n.name not in homes)


def test_ranges_across_many_chunks_and_segments(ahead: DevCluster) -> None:
    data = os.urandom(40 * CHUNK + 123)
    with ahead.client(_coordinator(ahead, "r")) as c:
        c.put_object("ahead", "r", data)
        assert c.get_object("ahead", "r") == data
        for first, last in [
            (0, len(data) - 1),
            (1, 3 * CHUNK + 5),  # unaligned, within the first segments
            (CHUNK - 1, 17 * CHUNK),  # crosses many segment boundaries
            (5 * CHUNK, 5 * CHUNK),  # one byte at a chunk start
            (len(data) - 200, len(data) - 1),  # the short last chunk
        ]:
            got = c.get_object("ahead", "r", range=f"bytes={first}-{last}")
            assert got == data[first : last + 1], (first, last)


def test_a_cached_get_reads_the_body_from_its_holders_only(ahead: DevCluster) -> None:
    """A GET served from the coordinator's record cache learns no holders from
    its read: it asks the key's homes for the body, not this node (which
    holds none of it) first for every segment."""
    data = os.urandom(20 * CHUNK)
    address = _coordinator(ahead, "cached")
    name = next(n.name for n in ahead.config.nodes if n.grpc == address)
    with ahead.client(address) as c:
        c.put_object("ahead", "cached", data)
        for _ in range(3):  # the first read may fill the cache; the others hit it
            assert c.get_object("ahead", "cached") == data
    log = (ahead.dir / "logs" / f"{name}.log").read_text()
    assert "body of ahead/cached from" not in log


def test_a_frozen_holder_is_given_up_and_the_get_goes_on(ahead_alone: DevCluster) -> None:
    """A holder SIGSTOPped (its connections stay up, it answers nothing) is
    given up after [node] stream_timeout_s of silence, not the minute and more
    the channel's keepalive took: the GET goes on from another holder within
    the client's deadline. The PUT of a key it holds fails over too."""
    cluster = ahead_alone
    data = os.urandom(30 * CHUNK)
    address = _coordinator(cluster, "frozen")
    frozen = cluster.homes("ahead", "frozen")[0]
    # One attempt, a deadline well above the stream timeout and well below
    # what the keepalive took (60 to 75 s here).
    once = RetryPolicy(max_attempts=1, total_s=30)
    with cluster.client(address, timeout=30, retry=once) as c:
        c.put_object("ahead", "frozen", data)
        # Read once: the record is in the coordinator's cache, so the next
        # read learns no holders and asks the key's homes, the frozen one too.
        assert c.get_object("ahead", "frozen") == data
        cluster.kill(frozen, "STOP")
        try:
            assert c.get_object("ahead", "frozen") == data
        finally:
            cluster.kill(frozen, "CONT")


def test_a_streaming_get_keeps_its_version_through_an_overwrite(ahead: DevCluster) -> None:
    old, new = os.urandom(40 * CHUNK), os.urandom(40 * CHUNK)
    with ahead.client(_coordinator(ahead, "ow")) as c:
        c.put_object("ahead", "ow", old)
        pieces = []
        with c.get_object_stream("ahead", "ow") as s:
            it = iter(s)
            pieces.append(next(it))
            c.put_object("ahead", "ow", new)
            pieces.extend(it)
        assert b"".join(pieces) == old
        assert c.get_object("ahead", "ow") == new


def test_a_holder_killed_mid_get_is_failed_over(ahead_alone: DevCluster) -> None:
    ahead = ahead_alone
    data = os.urandom(200 * CHUNK + 7)
    coordinator = _coordinator(ahead, "kill")
    with ahead.client(coordinator) as c:
        c.put_object("ahead", "kill", data)
        pieces = []
        with c.get_object_stream("ahead", "kill") as s:
            it = iter(s)
            pieces.append(next(it))
            # Segments go round-robin over the three holders: losing any one
            # leaves segments that must be read again from the others.
            ahead.kill(ahead.homes("ahead", "kill")[1])
            pieces.extend(it)
        assert b"".join(pieces) == data


def test_a_download_the_client_stops_reading_ends_quietly(ahead: DevCluster) -> None:
    """A client that closes a GetObject stream after its first message (a
    download cancelled) ends that stream on the node, and on the holders whose
    ReadData streams fed it, without an error: grpc.aio logged each such
    stream as an ERROR with a traceback (ExecuteBatchError), which reads as a
    node failing. The nodes serve on."""
    data = os.urandom(200 * CHUNK)
    address = _coordinator(ahead, "cut")
    with ahead.client(address) as c:
        c.put_object("ahead", "cut", data)
        for _ in range(4):
            with c.get_object_stream("ahead", "cut") as s:
                assert len(next(iter(s))) > 0
        assert c.get_object("ahead", "cut") == data
    for node in ahead.config.nodes:
        log = (ahead.dir / "logs" / f"{node.name}.log").read_text(errors="replace")
        assert "ExecuteBatchError" not in log, node.name
        assert "Traceback" not in log, node.name
