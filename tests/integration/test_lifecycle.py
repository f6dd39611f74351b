"""Starting and stopping processes: a process whose peers are not up yet waits
and says so (no crash); SIGTERM lets requests in flight finish."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, wait_until
from tristore.client import Client

pytestmark = pytest.mark.integration


def _log(cluster: DevCluster, name: str) -> str:
    return (cluster.dir / "logs" / f"{name}.log").read_text(errors="replace")


def test_a_process_started_before_its_peers_waits_and_says_so(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    cluster.down()
    cluster.start("r1")  # no node of its cluster is up
    wait_until(
        lambda: "waiting for source cluster local" in _log(cluster, "r1"),
        15,
        what="r1 to say what it waits for",
    )
    cluster.start("a1")  # one node: AZs b and c have none up
    wait_until(
        lambda: "waiting for peers: no node of az-b, az-c answers" in _log(cluster, "a1"),
        15,
        what="a1 to say what it waits for",
    )
    wait_until(
        lambda: "source cluster local reachable" in _log(cluster, "r1"),
        15,
        what="r1 to see a node of its cluster",
    )
    # a1 says it again a wait later ([node] peers are logged every 5 s): both
    # lived on past what they waited for, instead of a sleep that proves
    # nothing on a slow machine.
    wait_until(
        lambda: _log(cluster, "a1").count("waiting for peers: no node of az-b, az-c") >= 2,
        30,
        what="a1 to say it again",
    )
    assert {"a1"} == cluster.up_names()
    assert "r1" in cluster.up_names("replicator")
    assert "Traceback" not in _log(cluster, "a1") + _log(cluster, "r1")

    cluster.dev("up", timeout=120)  # the rest
    wait_until(lambda: "peers reachable" in _log(cluster, "a1"), 15, what="a1 to see its peers")
    with cluster.client(cluster.config.node_named("a1").grpc) as c:
        c.create_bucket("late")
        c.put_object("late", "k", b"v")
        assert c.get_object("late", "k") == b"v"


class _SlowBody:
    """A binary file whose reads take a while: a PUT that stays in flight."""

    def __init__(self, chunks: int, size: int, pause_s: float) -> None:
        self.chunks = [bytes([i]) * size for i in range(chunks)]
        self.pause_s = pause_s
        self.started = threading.Event()
        #: Set when the second chunk is asked for: the first was taken by the
        #: request stream, so the PUT is under way.
        self.streaming = threading.Event()
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if not self._buf and self.chunks:
            if self.started.is_set():
                self.streaming.set()
                time.sleep(self.pause_s)
            self.started.set()
            self._buf = self.chunks.pop(0)
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def test_sigterm_lets_a_put_in_flight_finish(own_cluster: DevCluster, tmp_path: Path) -> None:
    cluster = own_cluster
    a1 = cluster.config.node_named("a1")
    body = _SlowBody(chunks=8, size=256 * 1024, pause_s=0.25)
    expected = hashlib.md5(b"".join(body.chunks)).hexdigest()
    result: dict[str, object] = {}

    def put() -> None:
        try:
            with Client(a1.grpc) as c:
                c.create_bucket("term")
                result["info"] = c.put_object("term", "slow", body)
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            result["error"] = exc

    t = threading.Thread(target=put, daemon=True)
    t.start()
    assert body.streaming.wait(15)
    cluster.kill("a1", "TERM")  # returns once a1 exited
    t.join(30)
    assert "error" not in result, result
    assert getattr(result["info"], "etag", None) == expected
    assert "a1" not in cluster.up_names()
    assert "node a1 stopped" in _log(cluster, "a1")
    with cluster.client() as c:
        assert hashlib.md5(c.get_object("term", "slow")).hexdigest() == expected
