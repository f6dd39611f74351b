"""Reading the monitoring configuration (deploy/prometheus, deploy/grafana) for
tests/unit/test_monitoring.py and tests/integration/test_prometheus.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PROM = REPO / "deploy" / "prometheus"
ALERTS = PROM / "alerts.yml"
COMPOSE_CONFIG = PROM / "prometheus.yml"
DEV_CONFIG = PROM / "dev.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "tristore.json"
GRAFANA = REPO / "deploy" / "grafana" / "provisioning"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def tristore_job(cfg: dict[str, Any]) -> dict[str, Any]:
    jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "tristore"]
    assert len(jobs) == 1, "one scrape job named tristore"
    return dict(jobs[0])


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load(ALERTS)["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels() -> list[dict[str, Any]]:
    out = []
    for p in dashboard()["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(where, PromQL, legend) of every query of the dashboard."""
    for p in dashboard_panels():
        for t in p.get("targets", []):
            yield f"panel {p['title']!r} {t['refId']}", t["expr"], t.get("legendFormat", "")
    for v in dashboard()["templating"]["list"]:
        if v["type"] == "query":
            yield f"variable {v['name']}", v["query"]["query"], ""


def all_queries() -> list[tuple[str, str, str]]:
    alerts = [(f"alert {r['alert']}", r["expr"], "") for r in alert_rules()]
    return alerts + list(dashboard_queries())


def grafana_values(expr: str) -> str:
    """A dashboard query as Prometheus sees it with every cluster selected."""
    return expr.replace("$__rate_interval", "1m").replace("$cluster", ".*")
