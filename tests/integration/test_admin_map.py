"""Changing the cluster map on a live cluster under write load: `tristore admin
drain`, `undrain` and `decommission`. Afterwards every acknowledged write reads
back, every listing has every key, and each key's current version is on its
home node in each of its three AZs by the map as it is now."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import replace

import pytest

from tests.integration.cluster import DevCluster, cli_env, wait_until
from tristore import config, errors
from tristore.cli import dev
from tristore.client import Client
from tristore.clustermap import ClusterMap
from tristore.config import NodeSpec
from tristore.placement import Placer

# Its tests change the map, or check that changes are refused: a cluster of its own.
pytestmark = [pytest.mark.integration, pytest.mark.private_cluster]

BUCKET = "moving"
POOL = 240


class Mixer(threading.Thread):
    """Overwrites and deletes keys of a fixed pool, one at a time, recording the
    last acknowledged state of each (None: deleted). A key whose last request
    failed has an unknown state and is left out of the checks."""

    def __init__(self, cluster: DevCluster, limit: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.limit = limit
        self.deadline = time.monotonic() + seconds
        self.state: dict[str, bytes | None] = {}
        self.unknown: set[str] = set()
        self.failed: list[str] = []
        self.ops = 0
        self.stop_flag = threading.Event()

    def run(self) -> None:
        with self.cluster.client() as c:
            for i in range(self.limit):
                if self.stop_flag.is_set() or time.monotonic() > self.deadline:
                    return
                key = f"k{(i * 7) % POOL:04d}"
                try:
                    if i % 13 == 5:
                        c.delete_object(BUCKET, key)
                        body: bytes | None = None
                    else:
                        body = f"{key} op {i}".encode() * (1 + i % 9)
                        if i % 50 == 0:
                            body = body * 20_000  # some chunked bodies too
                        c.put_object(BUCKET, key, body)
                except errors.TristoreError as exc:
                    self.failed.append(f"{key}: {exc.code}: {exc}")
                    self.unknown.add(key)
                else:
                    self.state[key] = body
                    self.unknown.discard(key)
                self.ops = i + 1


def _fill(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        for i in range(POOL):
            c.put_object(BUCKET, f"k{i:04d}", f"k{i:04d} first".encode())


def _map(cluster: DevCluster, endpoint: str | None = None) -> ClusterMap:
    with Client(endpoint or cluster.endpoint) as c:
        return c.cluster_map()


def _check_everything(cluster: DevCluster, mixer: Mixer, cmap: ClusterMap) -> None:
    expected = {k: b for k, b in mixer.state.items() if k not in mixer.unknown}
    live = {k for k, b in expected.items() if b is not None}
    endpoints = ",".join(n.grpc for n in cmap.nodes)
    with Client(endpoints) as c:
        for key, body in expected.items():
            if body is None:
                with pytest.raises(errors.NoSuchKey):
                    c.get_object(BUCKET, key)
            else:
                assert c.get_object(BUCKET, key) == body, key
        # Whichever node coordinates it, a listing has every live key.
        for spec in cmap.nodes:
            with Client(spec.grpc) as one:
                listed = {e.key for e in one.list_objects(BUCKET).contents}
            assert live <= listed, (spec.name, sorted(live - listed)[:5])
            assert not (listed & {k for k, b in expected.items() if b is None}), spec.name
    # On disk: the home of each of the key's AZs, by the map as it is now.
    placer = Placer(cluster.config)
    placer.update(cmap.nodes, cmap.epoch)
    held = {n.name: cluster.node_versions(n.name) for n in cmap.nodes}
    for key, body in expected.items():
        for azr in placer.place(BUCKET, key).azs:
            rec = held[azr.home.name].get((BUCKET, key))
            if body is None:
                assert rec is None or rec.deleted, (key, azr.home.name)
            else:
                assert rec is not None, f"{azr.home.name} ({azr.az}) lacks {key}"
                assert rec.etag == hashlib.md5(body).hexdigest(), (key, azr.home.name)


def _wait_settled(cmap: ClusterMap) -> None:
    """Until no node of the map holds a hint or has a handoff pending."""
    with Client(",".join(n.grpc for n in cmap.nodes)) as c:
        wait_until(
            lambda: all(
                n.status is not None
                and n.status.handoffs_pending == 0
                and n.status.hints_pending == 0
                for n in c.cluster_status().nodes
            ),
            60,
            what="every handoff to finish",
        )


def _wait_map_everywhere(cluster: DevCluster, cmap: ClusterMap, epoch: int) -> None:
    def everywhere() -> bool:
        return all(_map(cluster, n.grpc).epoch >= epoch for n in cmap.nodes)

    wait_until(everywhere, 20, what=f"every node at map epoch {epoch}")


def test_drain_then_decommission_under_writes(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    victim = "a1"
    _fill(cluster)
    start = _map(cluster)
    mixer = Mixer(cluster, limit=3000, seconds=120)
    mixer.start()
    try:
        wait_until(lambda: mixer.ops >= 40, 30, what="writes before the drain")
        drain = cluster.cli("admin", "drain", victim, "--timeout", "90")
        out = drain.stdout.decode()
        assert f"epoch {start.epoch + 1}: {victim} is draining" in out, out
        assert f"{victim} is drained" in out, out
        ops_at_drained = mixer.ops

        again = json.loads(cluster.cli("admin", "drain", victim, "--no-wait", "--json").stdout)
        assert again["map"]["epoch"] == start.epoch + 1  # already draining: no new map

        status = json.loads(cluster.cli("admin", "status", "--json").stdout)
        a1 = next(n for n in status["nodes"] if n["name"] == victim)
        assert a1["status"]["state"] == "draining"
        assert status["epoch"] == start.epoch + 1

        # Drained means empty: new writes keep going to the rest of its AZ.
        wait_until(lambda: mixer.ops >= ops_at_drained + 60, 30, what="writes after the drain")
        with Client(cluster.config.node_named(victim).grpc) as c:
            st = next(n for n in c.cluster_status().nodes if n.name == victim).status
        assert st is not None and st.objects == 0 and st.handoffs_pending == 0, st

        gone = cluster.cli("admin", "decommission", victim, "--json")
        change = json.loads(gone.stdout)
        assert change["map"]["epoch"] == start.epoch + 2
        assert victim not in {n["name"] for n in change["map"]["nodes"]}
        wait_until(lambda: victim not in cluster.up_names(), 20, what=f"{victim} to stop")
        ops_at_gone = mixer.ops
        wait_until(lambda: mixer.ops >= ops_at_gone + 60, 30, what="writes after decommission")
    finally:
        mixer.stop_flag.set()
        mixer.join(30)
    assert not mixer.is_alive()
    assert len(mixer.failed) <= 2, mixer.failed
    assert mixer.ops >= 200

    now = _map(cluster, cluster.config.node_named("a2").grpc)
    assert now.epoch == start.epoch + 2 and not now.has(victim)
    _wait_map_everywhere(cluster, now, now.epoch)
    _wait_settled(now)
    _check_everything(cluster, mixer, now)

    # The node knows it left: started again, it refuses to serve.
    started = cluster.dev("start", victim, check=False, timeout=60)
    assert victim not in cluster.up_names(), started.stdout.decode() + started.stderr.decode()


def test_undrain_brings_keys_back_and_map_reaches_a_node_that_was_down(
    own_cluster: DevCluster,
) -> None:
    cluster = own_cluster
    _fill(cluster)
    start = _map(cluster)
    mixer = Mixer(cluster, limit=3000, seconds=120)
    mixer.start()
    try:
        wait_until(lambda: mixer.ops >= 40, 30, what="writes before the drain")
        # c2 is down while the map changes: it must learn the new maps from its peers.
        cluster.kill("c2", "KILL")
        drained = cluster.cli("admin", "drain", "b1", "--no-wait", "--json")
        assert json.loads(drained.stdout)["map"]["epoch"] == start.epoch + 1
        assert "c2" in json.loads(drained.stdout)["not_reached"]
        wait_until(lambda: mixer.ops >= 150, 40, what="writes while b1 drains")
        cluster.cli("admin", "undrain", "b1")
        cluster.start("c2")
        ops = mixer.ops
        wait_until(lambda: mixer.ops >= ops + 100, 40, what="writes after the undrain")
    finally:
        mixer.stop_flag.set()
        mixer.join(30)
    assert len(mixer.failed) <= 2, mixer.failed

    now = _map(cluster)
    assert now.epoch == start.epoch + 2
    assert all(n.state == "active" for n in now.nodes)
    _wait_map_everywhere(cluster, now, now.epoch)
    _wait_settled(now)
    _check_everything(cluster, mixer, now)
    # b1 is home to its keys again and holds them; b2 gave back what is b1's.
    placer = Placer(cluster.config)
    b1 = cluster.node_versions("b1")
    b2 = cluster.node_versions("b2")
    mine = [k for k in mixer.state if "b1" in [a.home.name for a in placer.place(BUCKET, k).azs]]
    assert mine and all((BUCKET, k) in b1 for k in mine)
    assert not [k for k in mine if (BUCKET, k) in b2]


def test_bad_map_changes_are_refused(cluster: DevCluster) -> None:
    with cluster.client() as c:
        start = c.cluster_map()
        with pytest.raises(errors.InvalidArgument, match="no node named"):
            c.change_node("zz9", "drain")
        with pytest.raises(errors.InvalidArgument, match="unknown action"):
            c.change_node("a1", "explode")
        with pytest.raises(errors.ConditionalRequestConflict, match="epoch"):
            c.change_node("a1", "drain", expect_epoch=start.epoch + 5)
        # Removing a node that was never drained needs --force.
        with pytest.raises(errors.InvalidRequest, match="drain it first"):
            Client(cluster.config.node_named("b1").grpc).change_node("a1", "remove")
        assert c.cluster_map() == start
    bad = cluster.cli("admin", "drain", "nosuch", check=False)
    assert bad.returncode != 0 and b"no node named" in bad.stderr


def test_config_show_prints_the_effective_configuration(cluster: DevCluster) -> None:
    text = cluster.cli("admin", "config", "show").stdout.decode()
    first, _, body = text.partition("\n")
    cmap = _map(cluster)
    assert first.startswith("# effective configuration of node ")
    assert first.endswith(f"cluster map epoch {cmap.epoch}")
    shown = config.parse(tomllib.loads(body), env={})
    assert shown.nodes == cmap.nodes and shown.cluster.epoch == cmap.epoch
    assert shown.node == cluster.config.node and shown.witnesses == cluster.config.witnesses
    doc = json.loads(cluster.cli("admin", "config", "show", "--json").stdout)
    assert doc["epoch"] == cmap.epoch and doc["node"] in {n.name for n in cmap.nodes}
    assert config.parse(tomllib.loads(doc["toml"]), env={}) == shown


def test_a_node_added_to_the_map_gets_its_keys(own_cluster: DevCluster) -> None:
    """A node is added by starting it with a map that names it at a higher
    epoch: its peers take the map from it and hand it the keys it is now home
    to, and it rebuilds what its AZ lacks, while writes go on."""
    cluster = own_cluster
    _fill(cluster)
    cfg = cluster.config
    new = NodeSpec(
        "a3",
        max(n.id for n in cfg.nodes) + 1,
        "az-a",
        f"127.0.0.1:{cluster.base_port + 60}",
        f"127.0.0.1:{cluster.base_port + 160}",
    )
    grown = replace(
        cfg, nodes=(*cfg.nodes, new), cluster=replace(cfg.cluster, epoch=cfg.cluster.epoch + 1)
    )
    path = cluster.config_path.parent / "cluster-a3.toml"  # data_dir resolves alike
    path.write_text(config.dump(grown))
    # A new node needs its certificate from the cluster CA, as its peers do.
    dev.issue_certificates(config.load(path))
    log_path = cluster.dir / "logs" / "a3.log"
    mixer = Mixer(cluster, limit=3000, seconds=120)
    mixer.start()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tristore",
                "serve",
                "node",
                "--config",
                str(path),
                "--name",
                "a3",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # A rebuild that could not compare every key (writes go on, the map
            # is still spreading) tries again after 30 s by default: a second.
            env={**cli_env(), "TRISTORE_NODE_REPAIR_REBUILD_RETRY_S": "1"},
        )
    try:
        wait_until(lambda: mixer.ops >= 40, 30, what="writes")
        now = ClusterMap(grown.cluster.epoch, grown.nodes)
        _wait_map_everywhere(cluster, now, now.epoch)
        wait_until(lambda: "rebuilt: " in log_path.read_text(), 60, what="a3 to rebuild")
        ops = mixer.ops
        wait_until(lambda: mixer.ops >= ops + 60, 30, what="writes after a3 joined")
    finally:
        mixer.stop_flag.set()
        mixer.join(30)
    try:
        assert len(mixer.failed) <= 2, mixer.failed
        _wait_settled(now)
        with Client(",".join(n.grpc for n in now.nodes)) as c:
            assert {n.name for n in c.cluster_status().nodes if n.up} == {n.name for n in now.nodes}
        _check_everything(cluster, mixer, now)
        placer = Placer(grown)
        mine = [
            k for k in mixer.state if any(a.home.name == "a3" for a in placer.place(BUCKET, k).azs)
        ]
        assert mine, "a3 must be home to some keys"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_lost_node_is_decommissioned_by_force_then_repaired(own_cluster: DevCluster) -> None:
    """A machine that will not come back: SIGKILL, `decommission --force` while
    writes go on, then `admin repair` puts every key on the home of each of its
    AZs by the map without it."""
    cluster = own_cluster
    victim = "b2"
    _fill(cluster)
    start = _map(cluster)
    mixer = Mixer(cluster, limit=3000, seconds=120)
    mixer.start()
    try:
        wait_until(lambda: mixer.ops >= 40, 30, what="writes before the loss")
        cluster.kill(victim, "KILL")
        refused = cluster.cli("admin", "decommission", victim, "--timeout", "1", check=False)
        assert refused.returncode != 0  # not without --force: it holds data nobody moved
        gone = cluster.cli("admin", "decommission", victim, "--force")
        out = gone.stdout.decode()
        assert "left the cluster map" in out and "admin repair" in out, out
        ops = mixer.ops
        wait_until(lambda: mixer.ops >= ops + 60, 30, what="writes after the removal")
        repaired = json.loads(cluster.cli("admin", "repair", "--json").stdout)
    finally:
        mixer.stop_flag.set()
        mixer.join(30)
    assert len(mixer.failed) <= 2, mixer.failed
    now = _map(cluster)
    assert not now.has(victim) and now.epoch >= start.epoch + 2
    assert repaired["keys_failed"] == 0, repaired
    assert repaired["missing_by_az"]["az-b"] > 0, repaired  # b2's keys, now b1's
    _wait_map_everywhere(cluster, now, now.epoch)
    _wait_settled(now)
    again = json.loads(cluster.cli("admin", "repair", "--json").stdout)
    assert set(again["missing_by_az"].values()) == {0}, again
    _check_everything(cluster, mixer, now)
