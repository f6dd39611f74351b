"""The monitoring configuration (deploy/prometheus, deploy/grafana) against the code.

- every metric the alert rules and the dashboard's PromQL name exists in the
  code's metrics modules (found by importing every ``metrics.py`` of the
  installed packages), with the labels the selectors, groupings and legends use;
- the compose scrape config labels its targets as ``dev up``'s file_sd targets
  do, for the same processes as ``dev up --clusters 2``;
- every alert has a severity and a summary and description; the replication
  lag alert's threshold is the config's ``threshold_s`` default;
- promtool (Debian's ``prometheus`` package) accepts the rules and both
  configs, and ``promtool test rules`` shows when the alerts fire (cases below);
- the dashboard is well formed: unique ids, panels inside the grid without
  overlapping, every query filtered by the ``cluster`` variable.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tests.monitoring import (
    ALERTS,
    COMPOSE_CONFIG,
    DEV_CONFIG,
    GRAFANA,
    PROM,
    REPO,
    alert_rules,
    all_queries,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    load,
    tristore_job,
)
from tristore import config
from tristore.cli import dev

pytestmark = pytest.mark.unit

#: Labels Prometheus itself gives every target.
SCRAPE_LABELS = {"job", "instance"}
SEVERITIES = {"critical", "warning", "info"}
#: What issue 7 asks the rules to cover, at least.
REQUIRED_ALERTS = {
    "TristoreNodeDown",
    "TristoreAZDown",
    "TristoreQuorumFailures",
    "TristoreReplicationLagHigh",
    "TristoreReplicationDLQNotEmpty",
}
#: Series the dashboard must chart (DESIGN.md §6), as named in PromQL.
REQUIRED_ON_DASHBOARD = {
    "up",
    "tristore_cluster_nodes_up",
    "tristore_quorum_failures_total",
    "tristore_rpc_handled_total",
    "tristore_rpc_handling_seconds_bucket",
    "tristore_node_fsync_seconds_bucket",
    "tristore_node_write_batch_size_count",
    "tristore_node_hints_pending",
    "tristore_cache_hits_total",
    "tristore_cache_misses_total",
    "tristore_witness_checks_total",
    "tristore_witness_unknown_answers_total",
    "tristore_witness_records_refused_total",
    "tristore_witness_records_fenced_total",
    "tristore_replication_lag_seconds",
    "tristore_replication_pending_operations",
    "tristore_replication_failed_total",
    "tristore_replication_dlq_entries",
}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}
_METRIC = re.compile(r"\b((?:tristore|process|python)_[a-z0-9_]+|up)\b(?!\s*\()")
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


# --- what the code exports ---------------------------------------------------------


def metrics_modules() -> list[str]:
    """Every ``metrics.py`` module of the packages pyproject.toml installs."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {p.rstrip("*") for p in patterns}
    found = []
    for top in sorted(tops):
        for path in sorted((REPO / top).rglob("metrics.py")):
            found.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return found


def exported() -> dict[str, set[str]]:
    """Every series name the processes export, with its labels: the tristore
    metrics modules' and the client library's process_* and python_*."""
    out: dict[str, set[str]] = {}
    for name in metrics_modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if not isinstance(obj, MetricWrapperBase):
                continue
            desc = next(iter(obj.describe()))
            for suffix in _SUFFIXES[desc.type]:
                labels = set(obj._labelnames) | ({"le"} if suffix == "_bucket" else set())
                out[desc.name + suffix] = labels
    for family in prometheus_client.REGISTRY.collect():
        for sample in family.samples:
            if sample.name.startswith(("process_", "python_")):
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


def target_labels() -> set[str]:
    """Labels the compose config gives its targets (static labels and relabelled)."""
    job = tristore_job(load(COMPOSE_CONFIG))
    labels = {k for group in job["static_configs"] for k in group.get("labels", {})}
    labels |= {r["target_label"] for r in job.get("relabel_configs", []) if "target_label" in r}
    return labels | SCRAPE_LABELS


def test_metric_modules_are_found() -> None:
    names = metrics_modules()
    assert {"tristore.metrics", "node.metrics", "witness.metrics", "replicator.metrics"} <= set(
        names
    )
    assert sum(n.startswith("tristore_") for n in exported()) >= 40, "discovery found too little"


# --- metric names and labels ---------------------------------------------------------


def test_every_metric_the_rules_and_dashboard_name_exists() -> None:
    known = exported()
    missing = [
        f"{where}: {name}"
        for where, expr, _ in all_queries()
        for name in _METRIC.findall(expr)
        if name != "up" and name not in known
    ]
    assert not missing, "metrics no module defines:\n" + "\n".join(missing)


def test_every_label_the_queries_use_exists() -> None:
    known = exported()
    targets = target_labels()
    any_label = targets.union(*known.values())
    problems = []
    for where, expr, legend in all_queries():
        for name, matchers in _SELECTOR.findall(expr):
            allowed = targets | known.get(name, set())
            problems += [
                f"{where}: {name}{{{label}}}"
                for label in _MATCHER.findall(matchers)
                if label not in allowed
            ]
        for group in _GROUPING.findall(expr):
            labels = [lb.strip() for lb in group.split(",") if lb.strip()]
            problems += [f"{where}: by ({lb})" for lb in labels if lb not in any_label]
        problems += [
            f"{where}: legend {{{{{lb}}}}}" for lb in _LEGEND.findall(legend) if lb not in any_label
        ]
    assert not problems, "labels nothing exports:\n" + "\n".join(problems)


def test_a_renamed_metric_would_be_caught() -> None:
    assert _METRIC.findall("sum by (az) (rate(tristore_quorum_failure_total[5m]))") == [
        "tristore_quorum_failure_total"
    ]
    assert "tristore_quorum_failure_total" not in exported()


# --- scrape configs ------------------------------------------------------------------


def _compose_targets() -> set[tuple[str, str, str, str | None, str]]:
    """(cluster, process, role, az, port) of every target of the compose config."""
    job = tristore_job(load(COMPOSE_CONFIG))
    (relabel,) = [r for r in job["relabel_configs"] if r["target_label"] == "process"]
    out = set()
    for group in job["static_configs"]:
        labels = group["labels"]
        for target in group["targets"]:
            m = re.fullmatch(relabel["regex"], target)
            assert m, f"{target} does not match the process relabelling"
            process = m.expand(relabel["replacement"].replace("$1", r"\1"))
            port = target.rpartition(":")[2]
            out.add((labels["cluster"], process, labels["role"], labels.get("az"), port))
    return out


def test_dev_targets_label_every_process(tmp_path: Path) -> None:
    _, layout = dev.plan_dir(dev.DevDir(tmp_path), 2, 3, 2, 7100, witnesses=3, replicators=2)
    groups = dev.prometheus_targets(layout)
    assert [g["targets"] for g in groups] == [[p.metrics] for p in layout.processes]
    by_name = {f"{g['labels']['cluster']}/{g['labels']['process']}": g["labels"] for g in groups}
    assert by_name["east/a1"] == {"cluster": "east", "role": "node", "process": "a1", "az": "az-a"}
    assert by_name["west/w2"]["az"] == "group-0" and by_name["west/w2"]["role"] == "witness"
    assert "az" not in by_name["east/r1"]
    assert {k for g in groups for k in g["labels"]} <= target_labels()


def test_compose_scrapes_what_dev_up_with_two_clusters_runs(tmp_path: Path) -> None:
    """The compose deployment of issue 7 is the default two-cluster dev layout:
    same clusters, process names, roles and AZs, so alerts and dashboard work
    on both."""
    _, layout = dev.plan_dir(dev.DevDir(tmp_path), 2, 3, 2, 7100, witnesses=3, replicators=2)
    want = {(p.cluster, p.local_name, p.role, p.az) for p in layout.processes}
    got = _compose_targets()
    assert {t[:4] for t in got} == want
    assert len({t[4] for t in got}) == 1, "every container serves metrics on one port"


def test_configs_load_the_alert_rules_and_honour_labels() -> None:
    for path in (COMPOSE_CONFIG, DEV_CONFIG):
        cfg = load(path)
        assert cfg["rule_files"] == ["alerts.yml"], path
        # Series whose own az label names the AZ they count must keep it.
        assert tristore_job(cfg)["honor_labels"] is True, path
    files = tristore_job(load(DEV_CONFIG))["file_sd_configs"][0]["files"]
    assert [Path(f).name for f in files] == [dev.DevDir(Path("x")).prometheus_targets.name]


# --- alert rules ---------------------------------------------------------------------


def test_every_alert_has_severity_summary_and_description() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    assert not REQUIRED_ALERTS - set(names), REQUIRED_ALERTS - set(names)
    for r in rules:
        assert re.fullmatch(r"Tristore[A-Z][A-Za-z]+", r["alert"]), r["alert"]
        assert r["labels"]["severity"] in SEVERITIES, r["alert"]
        assert r["annotations"]["summary"].strip(), r["alert"]
        assert len(r["annotations"]["description"].split()) >= 8, r["alert"]


def test_lag_alert_threshold_is_the_config_default() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "TristoreReplicationLagHigh"]
    threshold = float(re.findall(r">\s*([0-9.]+)", rule["expr"])[-1])
    assert threshold == config.ReplicatorSection.threshold_s


# --- promtool ------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_promtool_checks_the_rules() -> None:
    out = run_promtool("check", "rules", ALERTS.name).stdout
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


@pytest.mark.parametrize("path", [COMPOSE_CONFIG, DEV_CONFIG], ids=lambda p: p.name)
def test_promtool_checks_the_config(path: Path) -> None:
    run_promtool("check", "config", path.name)


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{inner}}}", "values": values}


def _target(cluster: str, process: str, role: str, az: str | None = None) -> dict[str, str]:
    labels = {"job": "tristore", "instance": f"{cluster}-{process}:7200"}
    labels |= {"cluster": cluster, "process": process, "role": role}
    return labels | ({"az": az} if az else {})


def _node(process: str, cluster: str = "east") -> dict[str, str]:
    return _target(cluster, process, "node", f"az-{process[0]}")


def _healthy_series() -> list[dict[str, str]]:
    """An idle healthy cluster east: six nodes, three witnesses, two replicators."""
    out = [_series("up", "1x40", **_node(f"{az}{i}")) for az in "abc" for i in (1, 2)]
    out += [
        _series("up", "1x40", **_target("east", f"w{i}", "witness", "group-0")) for i in (1, 2, 3)
    ]
    out += [_series("up", "1x40", **_target("east", f"r{i}", "replicator")) for i in (1, 2)]
    for az in "abc":
        for i in (1, 2):
            seen = _node(f"{az}{i}")
            for counted in "abc":
                labels = seen | {"az": f"az-{counted}"}
                out.append(_series("tristore_cluster_nodes_up", "2x40", **labels))
                out.append(_series("tristore_cluster_nodes", "2x40", **labels))
            out.append(_series("tristore_node_hints_pending", "0x40", **seen))
            out.append(_series("tristore_node_cluster_map_epoch", "3x40", **seen))
    dest = {"destination": "west/photos"}
    for i in (1, 2):
        r = _target("east", f"r{i}", "replicator")
        out.append(_series("tristore_replication_lag_seconds", "0x40", **r, **dest))
        out.append(_series("tristore_replication_dlq_entries", "0x40", **r))
        out.append(_series("tristore_replication_failed_total", "0x40", **r, **dest))
    return out


def _alert(name: str, at: str, *expected: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": e} for e in expected],
    }


def rule_cases() -> list[dict[str, Any]]:
    """promtool test cases (interval 1m): series over time and the alerts expected."""
    east = {"cluster": "east"}
    crit, warn = {"severity": "critical"}, {"severity": "warning"}
    quiet = [_alert(r["alert"], "30m") for r in alert_rules()]
    a1, a2 = _node("a1"), _node("a2")
    down = [_series("up", "1 0x10", **a1), _series("up", "1 1 1 0x8", **a2)]
    down += [_series("up", "1x10", **_node(n)) for n in ("b1", "c1")]
    w = [_target("east", f"w{i}", "witness", "group-0") for i in (1, 2, 3)]
    peers = [_series("up", "1x10", **_node(n)) for n in ("a1", "b1", "b2")]
    view = a1 | {"az": "az-b"}
    peers += [
        _series("tristore_cluster_nodes_up", "1x10", **view),
        _series("tristore_cluster_nodes", "2x10", **view),
    ]
    r1 = _target("east", "r1", "replicator")
    dest = {"destination": "west/photos"}
    return [
        {
            "name": "an idle healthy cluster raises nothing",
            "input_series": _healthy_series(),
            "alert_rule_test": quiet,
        },
        {
            "name": "a node down, then its whole AZ",
            "input_series": down,
            "alert_rule_test": [
                _alert("TristoreNodeDown", "2m", a1 | warn),
                _alert("TristoreAZDown", "2m"),
                _alert("TristoreNodeDown", "5m", a1 | warn, a2 | warn),
                _alert("TristoreAZDown", "5m", east | {"az": "az-a"} | crit),
            ],
        },
        {
            "name": "witnesses: one down, then a majority",
            "input_series": [
                _series("up", "1 0x10", **w[0]),
                _series("up", "1 1 1 0x8", **w[1]),
                _series("up", "1x10", **w[2]),
            ],
            "alert_rule_test": [
                _alert("TristoreWitnessDown", "2m", w[0] | warn),
                _alert("TristoreWitnessMajorityLost", "2m"),
                _alert("TristoreWitnessMajorityLost", "5m", east | {"az": "group-0"} | crit),
            ],
        },
        {
            "name": "a node sees a peer down that Prometheus sees up",
            "input_series": peers,
            "alert_rule_test": [
                _alert("TristorePeerUnreachable", "3m"),
                _alert("TristorePeerUnreachable", "6m", view | warn),
            ],
        },
        {
            "name": "the peer really is down: NodeDown says it, not PeerUnreachable",
            "input_series": [*peers, _series("up", "1 0x10", **_node("b2"))],
            "alert_rule_test": [_alert("TristorePeerUnreachable", "6m")],
        },
        {
            "name": "quorum failures",
            "input_series": [
                _series("tristore_quorum_failures_total", "0 0 0 1 2 3 4", **a1 | {"az": "az-c"})
            ],
            "alert_rule_test": [
                _alert("TristoreQuorumFailures", "2m"),
                _alert("TristoreQuorumFailures", "5m", east | {"az": "az-c"} | crit),
            ],
        },
        {
            "name": "replication lag, dead-letter queue, no replicator",
            "input_series": [
                _series("tristore_replication_lag_seconds", "0+100x20", **r1, **dest),
                _series("tristore_replication_dlq_entries", "0 0 2x10", **r1),
                _series("up", "1 1 0x20", **r1),
            ],
            "alert_rule_test": [
                _alert("TristoreReplicationLagHigh", "12m"),
                _alert("TristoreReplicationLagHigh", "15m", east | dest | warn),
                _alert("TristoreReplicationDLQNotEmpty", "4m", east | {"process": "r1"} | warn),
                _alert("TristoreNoReplicator", "8m", east | crit),
            ],
        },
        {
            "name": "one node stays on an older cluster map",
            "input_series": [
                _series("tristore_node_cluster_map_epoch", "2 3x20", **a1),
                _series("tristore_node_cluster_map_epoch", "2x20", **a2),
            ],
            "alert_rule_test": [
                _alert("TristoreClusterMapDiverged", "4m"),
                _alert("TristoreClusterMapDiverged", "8m", east | {"severity": "warning"}),
            ],
        },
        {
            "name": "a full disk, and markers of removed versions piling up",
            "input_series": [
                _series("tristore_node_disk_full", "0 0 1x10", **a1),
                _series("tristore_node_disk_full", "0x12", **a2),
                _series("tristore_node_tombstones", "0+10x1800", **a2),
                # A change log that levels off (a steady load) never alerts.
                _series("tristore_node_changelog_entries", "0+50x360 18000x1440", **a1),
                _series("tristore_node_changelog_entries", "0+10x1800", **a2),
            ],
            "alert_rule_test": [
                _alert("TristoreNodeDiskFull", "3m"),
                _alert("TristoreNodeDiskFull", "5m", a1 | crit),
                _alert("TristoreTombstonesGrowing", "20h"),
                _alert("TristoreTombstonesGrowing", "29h", a2 | warn),
                _alert("TristoreChangeLogGrowing", "20h"),
                _alert("TristoreChangeLogGrowing", "29h", a2 | warn),
            ],
        },
        {
            "name": "hints piling up",
            "input_series": [_series("tristore_node_hints_pending", "0+5x40", **a1)],
            "alert_rule_test": [
                _alert("TristoreHintsPendingGrowing", "10m"),
                _alert("TristoreHintsPendingGrowing", "35m", a1 | warn),
            ],
        },
    ]


def test_promtool_tests_when_the_alerts_fire(tmp_path: Path) -> None:
    # promtool compares annotations too; the cases are about when rules fire,
    # so they run against a copy without them (check rules covers the templates).
    rules = load(ALERTS)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", **case} for case in rule_cases()],
    }
    (tmp_path / "alerts.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    run_promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)


# --- dashboard -----------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    cluster = variables["cluster"]
    assert cluster["type"] == "query" and cluster["includeAll"] and cluster["multi"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("description"), f"{p['title']!r} has no description"
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]


def test_every_dashboard_query_follows_the_cluster_variable() -> None:
    for where, expr, _ in dashboard_queries():
        if where.startswith("variable"):
            continue
        selectors = _SELECTOR.findall(expr)
        assert selectors, where
        for name, matchers in selectors:
            assert 'cluster=~"$cluster"' in matchers, f"{where}: {name}{{{matchers}}}"


def test_dashboard_charts_what_design_asks_for() -> None:
    named = {n for _, expr, _ in dashboard_queries() for n in _METRIC.findall(expr)}
    assert not REQUIRED_ON_DASHBOARD - named, REQUIRED_ON_DASHBOARD - named
    rows = {p["title"] for p in dashboard()["panels"] if p["type"] == "row"}
    assert {"Cluster health", "Requests", "Witnesses", "Metadata cache", "Replication"} <= rows


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    (source,) = load(GRAFANA / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == source["uid"]
    (provider,) = load(GRAFANA / "dashboards" / "tristore.yml")["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
