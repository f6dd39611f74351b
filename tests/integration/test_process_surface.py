"""What every process serves besides its own API (DESIGN.md §4, §6)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.cluster import DevCluster, user_channel

pytestmark = pytest.mark.integration

SERVICES = {
    "node": {
        "tristore.v1.ObjectService",
        "tristore.v1.ReplicaService",
        "tristore.v1.AdminService",
        "tristore.v1.EventService",
    },
    "witness": {"tristore.v1.WitnessService"},
}
# Series a scrape must show from each role (names as exposed).
SERIES = {
    "node": [
        "tristore_rpc_handled_total",
        "tristore_rpc_handling_seconds_bucket",
        "tristore_node_fsync_seconds_bucket",
        "tristore_node_write_batch_size_bucket",
        "tristore_node_hints_pending",
        "tristore_cluster_nodes_up",
        "tristore_cache_hits_total",
        "tristore_process_info",
    ],
    "witness": [
        "tristore_witness_keys",
        "tristore_witness_checks_total",
        "tristore_witness_incarnation",
        "tristore_process_info",
    ],
}


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_every_process_serves_health_reflection_and_metrics(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("surface")
        c.put_object("surface", "k", b"v")
        assert c.get_object("surface", "k") == b"v"
    cfg = cluster.config
    procs = [("node", p.name, p.grpc, p.metrics) for p in cfg.nodes]
    procs += [("witness", p.name, p.grpc, p.metrics) for p in cfg.witnesses]
    assert {role for role, *_ in procs} == {"node", "witness"}
    for role, name, grpc_addr, metrics_addr in procs:
        with user_channel(grpc_addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ["", *SERVICES[role]]:
                resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING, (name, service)
            refl = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = list(
                refl.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
            )
            listed = {s.name for s in answers[0].list_services_response.service}
            assert SERVICES[role] <= listed, (name, listed)
            assert "grpc.health.v1.Health" in listed
        status, body = _get(f"http://{metrics_addr}/healthz")
        assert status == 200 and body.strip() == "ok"
        status, body = _get(f"http://{metrics_addr}/metrics")
        assert status == 200
        exported = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ")}
        for series in SERIES[role]:
            family = series.removesuffix("_bucket")
            assert family in exported or family.removesuffix("_total") in exported, (name, series)
        assert f'name="{name}"' in body and f'role="{role}"' in body
        assert _get(f"http://{metrics_addr}/nope")[0] == 404


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_every_thread_of_every_process_runs_under_sched_batch(cluster: DevCluster) -> None:
    """``[cluster] sched_batch`` (on by default): each server process put
    its threads, and the threads they started since (gRPC's, RocksDB's, the
    group commit's), under SCHED_BATCH."""
    with cluster.client() as c:
        c.create_bucket("sched")
        c.put_object("sched", "k", b"v")  # the write path's threads are up
    pids = [int(str(p["pid"])) for p in cluster.status() if p.get("pid")]
    assert pids
    for pid in pids:
        threads = os.listdir(f"/proc/{pid}/task")
        assert len(threads) > 1, pid
        policies = {int(t): os.sched_getscheduler(int(t)) for t in threads}
        assert set(policies.values()) == {os.SCHED_BATCH}, (pid, policies)
