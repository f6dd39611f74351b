"""Small writes relayed to the cluster's write coordinator (``[node]
write_coordinators``, node/relay.py) on a real ``dev up`` cluster: they land
as if the client had called the coordinator, are checked there, and go on
when the coordinator is SIGKILLed; the SDK sends its next writes to the
coordinator the answers name (tristore/client/_door.py)."""

from __future__ import annotations

import asyncio
import hashlib
import urllib.request
from collections.abc import Iterator

import pytest

from tests.integration.cluster import ROOT, DevCluster, start_cluster, wait_until
from tristore import errors
from tristore.client import AsyncClient
from tristore.client._door import WRITE_HINTS_ENV
from tristore.credentials import Credentials

pytestmark = pytest.mark.integration

ONE = {"TRISTORE_NODE_WRITE_COORDINATORS": "1"}
BUCKET = "relay-test"
#: The coordinator of one: the first node of the first AZ.
COORDINATOR = "a1"


@pytest.fixture(scope="module")
def relaying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("relay"), extra_env=ONE)
    try:
        with cluster.client() as c:
            c.create_bucket(BUCKET)
        yield cluster
    finally:
        cluster.down()


def _samples(cluster: DevCluster, name: str, metric: str, **labels: str) -> float:
    """Sum of ``metric``'s samples on node ``name`` that carry ``labels``."""
    addr = {n.name: n.metrics for n in cluster.config.nodes}[name]
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    want = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            held = set(line.split("{", 1)[1].split("}", 1)[0].split(","))
            if want <= held:
                total += float(line.rsplit(" ", 1)[1])
    return total


def _relayed(cluster: DevCluster, name: str) -> float:
    return _samples(cluster, name, "tristore_node_relayed_calls_total", outcome="answered")


def _handled(cluster: DevCluster, name: str, method: str) -> float:
    return _samples(cluster, name, "tristore_rpc_handled_total", method=method)


def _grpc(cluster: DevCluster, name: str) -> str:
    return next(n.grpc for n in cluster.config.nodes if n.name == name)


async def _put_all(
    endpoint: str,
    items: dict[str, bytes],
    conc: int,
    until: asyncio.Event | None = None,
    **kw: object,
) -> list[object]:
    """PUT every item through ``endpoint``, ``conc`` at once (or, with
    ``until``, the items taken before it is set); each call's result (its
    ObjectInfo) or the error it raised."""
    keys = iter(items)
    out: list[object] = []

    async def worker(c: AsyncClient) -> None:
        for key in keys:
            if until is not None and until.is_set():
                return
            try:
                out.append(await c.put_object(BUCKET, key, items[key]))
            except errors.TristoreError as exc:
                out.append(exc)

    async with AsyncClient(endpoint, **kw) as c:  # type: ignore[arg-type]
        await asyncio.gather(*(worker(c) for _ in range(conc)))
    return out


@pytest.fixture
def no_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients that ignore the coordinator the answers name, as other SDKs do:
    every write goes to the node they call, which relays it."""
    monkeypatch.setenv(WRITE_HINTS_ENV, "0")


@pytest.mark.usefixtures("no_hints")
def test_writes_taken_by_any_node_are_coordinated_by_the_coordinator(
    relaying: DevCluster,
) -> None:
    others = [n.name for n in relaying.config.nodes if n.name != COORDINATOR]
    put = "PutSmallObject"
    before = {n.name: (_relayed(relaying, n.name), _handled(relaying, n.name, put))
              for n in relaying.config.nodes}  # fmt: skip
    items = {
        f"{name}/k{i}": hashlib.sha256(f"{name}{i}".encode()).digest() * 40
        for name in others
        for i in range(12)
    }
    for name in others:
        mine = {k: v for k, v in items.items() if k.startswith(f"{name}/")}
        results = asyncio.run(_put_all(_grpc(relaying, name), mine, conc=6))
        assert not [r for r in results if isinstance(r, Exception)], results
    after = {n.name: (_relayed(relaying, n.name), _handled(relaying, n.name, put))
             for n in relaying.config.nodes}  # fmt: skip
    for name in others:
        relayed = after[name][0] - before[name][0]
        here = after[name][1] - before[name][1]
        # Each PUT was either relayed or run here (alone on the node), and
        # with six at once most were relayed.
        assert relayed + here == 12, (name, relayed, here)
        assert relayed >= 6, (name, relayed, here)
    total_relayed = sum(after[n][0] - before[n][0] for n in others)
    coordinated = after[COORDINATOR][1] - before[COORDINATOR][1]
    assert coordinated == total_relayed
    assert after[COORDINATOR][0] == before[COORDINATOR][0]  # a coordinator relays nothing
    # Written once, readable through every node.
    for node in relaying.config.nodes:
        with relaying.client(node.grpc) as c:
            for key in list(items)[::7]:
                assert c.get_object(BUCKET, key) == items[key]
    with relaying.client(_grpc(relaying, others[0])) as c:
        listed = {o.key for o in c.list_objects(BUCKET, prefix=f"{others[0]}/").contents}
        assert listed == {k for k in items if k.startswith(f"{others[0]}/")}


def _refused(cluster: DevCluster, name: str) -> float:
    every = _handled(cluster, name, "PutSmallObject")
    ok = _samples(cluster, name, "tristore_rpc_handled_total", method="PutSmallObject", code="OK")
    return every - ok


@pytest.mark.usefixtures("no_hints")
def test_a_relayed_call_is_checked_by_the_coordinator(relaying: DevCluster) -> None:
    name = "c2"
    wrong = Credentials(ROOT.access_key_id, "not-the-secret")
    before = {n: _refused(relaying, n) for n in (name, COORDINATOR)}
    forged = {f"forged/k{i}": b"x" * 100 for i in range(16)}
    honest = {f"honest/k{i:04d}": b"y" * 100 for i in range(2000)}
    flowing = _relayed(relaying, name) + 5

    async def both() -> tuple[list[object], list[object]]:
        # A forged call is relayed when other writes are in flight on the
        # node (alone, it runs there): honest ones keep some in flight until
        # every forged one is answered (at most 2,000 of them), and the
        # forged ones go once the honest ones are being relayed. (A fixed
        # 120 honest writes were all done before the forged ones went, on
        # a fast run: all 16 ran on the node, none was relayed.)
        endpoint = _grpc(relaying, name)
        done = asyncio.Event()
        good = asyncio.ensure_future(_put_all(endpoint, honest, conc=8, until=done))
        for _ in range(400):
            if good.done() or await asyncio.to_thread(_relayed, relaying, name) >= flowing:
                break
            await asyncio.sleep(0.02)
        bad = await _put_all(endpoint, forged, conc=4, credentials=wrong)
        done.set()
        return bad, await good

    bad, good = asyncio.run(both())
    assert all(isinstance(r, errors.SignatureDoesNotMatch) for r in bad), bad
    assert not [r for r in good if isinstance(r, Exception)], good
    here = _refused(relaying, name) - before[name]
    there = _refused(relaying, COORDINATOR) - before[COORDINATOR]
    # Every forged call was refused by a guard: the coordinator's when relayed.
    assert here + there == len(forged), (here, there)
    assert there >= 1, (here, there)
    with relaying.client() as c:
        assert not c.list_objects(BUCKET, prefix="forged/").contents
        listed = sum(len(p.contents) for p in c.iter_objects(BUCKET, prefix="honest/"))
        assert listed == len(good), (listed, len(good))


def test_writes_go_on_when_the_coordinator_is_killed(relaying: DevCluster) -> None:
    name = "b1"
    items = {f"kill/k{i}": hashlib.sha256(str(i).encode()).digest() * 32 for i in range(240)}
    done: list[object] = []
    started = _handled(relaying, COORDINATOR, "PutSmallObject")

    async def load_and_kill() -> None:
        task = asyncio.ensure_future(_put_all(_grpc(relaying, name), items, conc=8))
        # Kill the coordinator once the PUTs flow through it (relayed by b1,
        # or sent to it by the client once an answer named it).
        for _ in range(200):
            if _handled(relaying, COORDINATOR, "PutSmallObject") > started + 20 or task.done():
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(relaying.kill, COORDINATOR)
        done.extend(await asyncio.wait_for(task, timeout=180))

    try:
        asyncio.run(load_and_kill())
        failed = [r for r in done if isinstance(r, Exception)]
        assert not failed, failed  # the SDK's retries carry every PUT through
        with relaying.client(_grpc(relaying, "c1")) as c:
            for key, body in items.items():
                assert c.get_object(BUCKET, key) == body
    finally:
        relaying.start(COORDINATOR, extra_env=ONE)
        relaying.wait_every_node_seen_up()
    # Back up, the coordinator takes the relayed writes again.
    before = _relayed(relaying, name)
    more = {f"back/k{i}": b"y" * 64 for i in range(24)}

    def relayed_again() -> bool:
        asyncio.run(_put_all(_grpc(relaying, name), more, conc=6))
        return _relayed(relaying, name) > before

    wait_until(
        relayed_again, timeout=60, interval=1, what="writes relayed to the restarted coordinator"
    )


def test_writes_go_on_while_the_coordinator_hangs(relaying: DevCluster) -> None:
    """A coordinator whose process is stopped keeps its connections open: the
    calls relayed to it are given up after twice ``replica_timeout_s`` (the
    client told UNAVAILABLE, which the SDK retries), and the node then
    coordinates its writes itself."""
    name = "c1"
    items = {f"hang/k{i}": hashlib.sha256(b"h%d" % i).digest() * 8 for i in range(60)}
    before = _samples(relaying, name, "tristore_node_relayed_calls_total", outcome="broken")
    with relaying.paused(COORDINATOR):
        results = asyncio.run(_put_all(_grpc(relaying, name), items, conc=6))
    failed = [r for r in results if isinstance(r, Exception)]
    assert not failed, failed
    relaying.wait_every_node_seen_up()
    with relaying.client(_grpc(relaying, "b2")) as c:
        for key, body in items.items():
            assert c.get_object(BUCKET, key) == body
    # The writes in flight when it stopped were given up on, not waited out.
    broken = _samples(relaying, name, "tristore_node_relayed_calls_total", outcome="broken")
    assert broken > before


def test_the_sdk_sends_its_writes_to_the_coordinator_an_answer_names(
    relaying: DevCluster,
) -> None:
    name = "b2"
    put = "PutSmallObject"
    before = {n: (_relayed(relaying, n), _handled(relaying, n, put)) for n in (name, COORDINATOR)}
    items = {f"hinted/k{i}": hashlib.sha256(b"n%d" % i).digest() * 20 for i in range(120)}
    results = asyncio.run(_put_all(_grpc(relaying, name), items, conc=6))
    assert not [r for r in results if isinstance(r, Exception)], results
    relayed = _relayed(relaying, name) - before[name][0]
    here = _handled(relaying, name, put) - before[name][1]
    coordinated = _handled(relaying, COORDINATOR, put) - before[COORDINATOR][1]
    # Only the first writes, in flight before an answer named the
    # coordinator, went through b2; every other one went to a1 directly.
    assert relayed <= 12, (relayed, here)
    assert relayed + here <= 18, (relayed, here)
    assert coordinated == len(items) - here, (coordinated, here)
    # A write alone on b2 runs there, and its answer names the coordinator
    # all the same: a client writing one at a time moves there too.
    before = _handled(relaying, name, put)
    alone = {f"alone/k{i}": b"z" * 100 for i in range(10)}
    results = asyncio.run(_put_all(_grpc(relaying, name), alone, conc=1))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert _handled(relaying, name, put) - before == 1
    with relaying.client(_grpc(relaying, "c2")) as c:
        for key in [*list(items)[::5], *alone]:
            assert c.get_object(BUCKET, key) == {**items, **alone}[key]
