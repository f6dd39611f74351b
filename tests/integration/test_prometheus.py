"""The real Prometheus (Debian's package) scraping two local clusters through the
file_sd targets `dev up` writes and deploy/prometheus/dev.yml: every process up,
the key series there with the labels the alerts and the dashboard group by,
every alert rule and dashboard query accepted, nothing alerting while the
clusters are healthy, and a node killed raising TristoreNodeDown and
TristoreAZDown (docs/metrics-and-health.md: Monitoring)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.monitoring import ALERTS, DEV_CONFIG, alert_rules, dashboard_queries
from tests.monitoring import grafana_values as with_all_clusters
from tristore import errors
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCRAPE_S = 1
#: Per AZ: enough for AZ-level answers, small enough for two clusters on two cores.
NODES_PER_AZ = 1
SRC, DST = "mon-src", "mon-dst"


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing: .ci/run installs Debian's package")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server of our own on a free loopback port; its HTTP API."""

    def __init__(self, binary: str, config: Path, home: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = home / "prometheus.log"
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = urllib.parse.urlencode({"query": expr}).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query", data, timeout=5) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{expr}: {e.read().decode(errors='replace')}") from None
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited:\n{self.tail()}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


def write_config(cluster: DevCluster, home: Path) -> Path:
    """deploy/prometheus/dev.yml, pointed at this dev dir's targets and scraping
    every second."""
    cfg = yaml.safe_load(DEV_CONFIG.read_text())
    cfg["global"] = {
        "scrape_interval": f"{SCRAPE_S}s",
        "scrape_timeout": f"{SCRAPE_S}s",
        "evaluation_interval": f"{SCRAPE_S}s",
    }
    cfg["rule_files"] = [str(ALERTS)]
    (job,) = cfg["scrape_configs"]
    job["file_sd_configs"] = [{"files": [str(cluster.dir / "prometheus-targets.json")]}]
    path = home / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Two clusters (east replicating a bucket to west), with a little traffic."""
    prometheus_binary()
    east = start_cluster(
        tmp_path_factory.mktemp("mon"),
        "--clusters",
        "2",
        "--nodes-per-az",
        str(NODES_PER_AZ),
        "--replicators",
        "1",
    )
    try:
        west = east.clusters["west"]
        with east.client() as e, west.client() as w:
            for c, bucket in ((e, SRC), (w, DST)):
                c.create_bucket(bucket)
                c.put_bucket_versioning(bucket, "Enabled")
            e.put_bucket_replication(SRC, [Rule("all", (Destination("west", DST),))])
            for i in range(3):
                e.put_object(SRC, f"k{i}", os.urandom(1000))
                assert len(e.get_object(SRC, f"k{i}")) == 1000

            def arrived() -> bool:
                try:
                    return all(w.head_object(DST, f"k{i}").size == 1000 for i in range(3))
                except errors.TristoreError:
                    return False

            wait_until(arrived, 60, what="the objects to reach west")
        yield east
    finally:
        east.down()


@pytest.fixture(scope="module")
def prometheus(
    clusters: DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    home = tmp_path_factory.mktemp("prometheus")
    prom = Prometheus(prometheus_binary(), write_config(clusters, home), home)
    try:
        wait_until(prom.ready, 30, interval=0.2, what="prometheus to be ready")
        yield prom
    finally:
        prom.stop()


def expected_processes(cluster: DevCluster) -> dict[tuple[str, str], dict[str, Any]]:
    """(cluster, process) -> the launcher's record, for every process of the dir."""
    state = json.loads((cluster.dir / "launcher.json").read_text())
    return {(p["cluster"], p["name"].rpartition("/")[2]): p for p in state["processes"]}


def test_every_process_is_scraped_up_with_its_labels(
    clusters: DevCluster, prometheus: Prometheus
) -> None:
    want = expected_processes(clusters)
    assert len(want) == 2 * (3 * NODES_PER_AZ + 3 + 1)

    def all_up() -> bool:
        targets = prometheus.get("/api/v1/targets", state="active")["activeTargets"]
        return len(targets) == len(want) and all(t["health"] == "up" for t in targets)

    try:
        wait_until(all_up, 60, interval=0.5, what="every target to be scraped up")
    except AssertionError:
        targets = prometheus.get("/api/v1/targets", state="active")["activeTargets"]
        raise AssertionError(
            json.dumps([(t["labels"], t["health"], t["lastError"]) for t in targets], indent=1)
        ) from None
    up = {(s["metric"]["cluster"], s["metric"]["process"]): s for s in prometheus.query("up")}
    assert set(up) == set(want)
    for key, p in want.items():
        labels = up[key]["metric"]
        assert up[key]["value"][1] == "1", key
        assert labels["role"] == p["role"] and labels.get("az") == p["az"], labels
        assert labels["job"] == "tristore" and labels["instance"] == p["metrics"]


def _sum(prometheus: Prometheus, expr: str) -> float:
    result = prometheus.query(f"sum({expr})")
    return float(result[0]["value"][1]) if result else -1.0


def test_key_series_exist(clusters: DevCluster, prometheus: Prometheus) -> None:
    dest = f'destination="west/{DST}"'
    present = [
        'tristore_rpc_handled_total{role="node", method=~"PutObject|PutSmallObject", code="OK"}',
        'tristore_rpc_handled_total{role="witness"}',
        'tristore_rpc_handling_seconds_count{role="node"}',
        "tristore_node_fsync_seconds_count",
        "tristore_node_write_batch_size_count",
        "tristore_witness_checks_total",
        "tristore_witness_records_total",
        f'tristore_replication_replicated_total{{cluster="east", {dest}}}',
    ]
    exist = [
        "tristore_node_hints_pending",
        "tristore_cache_hits_total",
        "tristore_witness_keys",
        f'tristore_replication_lag_seconds{{cluster="east", {dest}}}',
        'tristore_replication_dlq_entries{role="replicator"}',
        "process_start_time_seconds",
    ]

    def scraped() -> bool:
        return all(_sum(prometheus, e) > 0 for e in present) and all(
            _sum(prometheus, e) >= 0 for e in exist
        )

    try:
        wait_until(scraped, 30, interval=0.5, what="the key series")
    except AssertionError:
        raise AssertionError({e: _sum(prometheus, e) for e in present + exist}) from None
    info = prometheus.query("count by (role) (tristore_process_info)")
    assert {s["metric"]["role"] for s in info} == {"node", "witness", "replicator"}
    # honor_labels: a node's view of its peers keeps the az of the AZ it counts.
    seen = prometheus.query("min by (cluster, az) (tristore_cluster_nodes_up)")
    assert {(s["metric"]["cluster"], s["metric"]["az"]) for s in seen} == {
        (c, f"az-{a}") for c in ("east", "west") for a in "abc"
    }
    assert all(float(s["value"][1]) == NODES_PER_AZ for s in seen), seen
    # Lag is 0 once caught up: an idle cluster must not look behind.
    assert _sum(prometheus, f"tristore_replication_lag_seconds{{{dest}}}") == 0


def evaluated_rules(prometheus: Prometheus) -> list[dict[str, Any]]:
    """Every rule of alerts.yml as Prometheus reports it, once each was evaluated."""
    names = {r["alert"] for r in alert_rules()}
    rules: list[dict[str, Any]] = []

    def done() -> bool:
        rules[:] = [r for g in prometheus.get("/api/v1/rules")["groups"] for r in g["rules"]]
        evaluated = all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return evaluated and {r["name"] for r in rules} == names

    wait_until(done, 30, interval=0.5, what="every rule loaded and evaluated")
    return rules


def test_every_rule_and_dashboard_query_is_accepted(prometheus: Prometheus) -> None:
    for where, expr, _ in dashboard_queries():
        if not where.startswith("variable"):
            prometheus.query(with_all_clusters(expr))
    rules = evaluated_rules(prometheus)
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad


def test_healthy_clusters_raise_nothing_and_a_dead_az_alerts(
    clusters: DevCluster, prometheus: Prometheus
) -> None:
    wait_until(
        lambda: _sum(prometheus, "up") == len(expected_processes(clusters)),
        60,
        what="every process up",
    )
    evaluated_rules(prometheus)
    # Nothing pending or firing once all is up: a blip (one scrape missed on a
    # busy machine) may start an alert's pending state, but it must clear.
    active: list[dict[str, Any]] = []

    def quiet() -> bool:
        active[:] = prometheus.get("/api/v1/alerts")["alerts"]
        return not active

    try:
        wait_until(quiet, 30, interval=SCRAPE_S, what="no alert pending or firing")
    except AssertionError:
        raise AssertionError(json.dumps(active, indent=1)) from None

    clusters.kill("a1")  # the only node of east's az-a

    def alerting() -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("process") or a["labels"].get("az", ""))
            for a in prometheus.get("/api/v1/alerts")["alerts"]
            if a["labels"].get("cluster") == "east"
        }

    wait_until(
        lambda: {("TristoreNodeDown", "a1"), ("TristoreAZDown", "az-a")} <= alerting(),
        30,
        interval=0.5,
        what="TristoreNodeDown and TristoreAZDown for east a1 / az-a",
    )
    alert = next(
        a
        for a in prometheus.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "TristoreAZDown"
    )
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "Every node of east az-a is down"
