"""deploy/k8s: the manifests are valid Kubernetes objects and agree with the cluster map.

What is checked, offline:

- every manifest validates against the Kubernetes JSON schemas that the
  ``kubernetes-validate`` package bundles (strict: an unknown field is an
  error), for the oldest Kubernetes the manifests claim and the newest the
  package knows; the ServiceMonitor (a CRD, not in those schemas) against the
  part of its CRD schema it uses; it must scrape every process exactly once,
  with the target labels deploy/prometheus's alerts and dashboard group by;
- the ConfigMap's ``cluster.toml`` loads through ``tristore.config`` and names
  exactly the processes the StatefulSets run: names, roles, AZs (= the zone a
  StatefulSet is pinned to), the pod DNS names and ports of the headless
  Services, the data directory on the volume;
- every container runs as non-root, without privilege escalation, with
  resources, and with gRPC health probes on its gRPC port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tristore import config
from tristore.pb import admin_pb2, objects_pb2, replica_pb2, witness_pb2
from tristore.tls import DOOR_PORT_OFFSET

pytestmark = pytest.mark.unit

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: Native gRPC probes are GA from Kubernetes 1.27; docs/operations.md says so.
OLDEST_KUBERNETES = "1.27"
CLUSTER_DOMAIN = "svc.cluster.local"
ZONE_KEY = "topology.kubernetes.io/zone"
WORKLOAD_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
ROLES = ("node", "witness", "replicator")


def _service(module: Any, name: str) -> str:
    return str(module.DESCRIPTOR.services_by_name[name].full_name)


#: The gRPC services each role registers. Health reports "" (the server) SERVING
#: as soon as the port is open, but a role's own services only once it is ready.
ROLE_SERVICES = {
    "node": {
        _service(objects_pb2, "ObjectService"),
        _service(replica_pb2, "ReplicaService"),
        _service(admin_pb2, "AdminService"),
    },
    "witness": {_service(witness_pb2, "WitnessService")},
    "replicator": set(),
}


# --- reading the manifests -----------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    file: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


def load_docs(directory: Path = K8S) -> list[Doc]:
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for obj in yaml.safe_load_all(path.read_text()):
            if obj is not None:
                docs.append(Doc(path.name, obj))
    return docs


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    found = load_docs()
    assert len(found) >= 10, f"found only {len(found)} objects in {K8S}"
    return found


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.kind == kind]


def the_configmap(docs: list[Doc]) -> Doc:
    maps = [d for d in of_kind(docs, "ConfigMap") if "cluster.toml" in d.obj.get("data", {})]
    assert len(maps) == 1, f"expected one ConfigMap with cluster.toml, found {maps}"
    return maps[0]


def cluster_map(docs: list[Doc]) -> config.ClusterConfig:
    return config.parse(tomllib.loads(the_configmap(docs).obj["data"]["cluster.toml"]), env={})


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Pod:
    """One pod a StatefulSet runs, as Kubernetes will name and label it."""

    name: str
    sts: Doc
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def container(self) -> dict[str, Any]:
        (c,) = self.spec["containers"]
        return dict(c)

    @property
    def role(self) -> str:
        return str(self.container["args"][1])

    def port(self, name: str) -> int:
        return int(next(p["containerPort"] for p in self.container["ports"] if p["name"] == name))


def pods(docs: list[Doc]) -> list[Pod]:
    out = []
    for sts in of_kind(docs, "StatefulSet"):
        tmpl = sts.obj["spec"]["template"]
        for i in range(sts.obj["spec"]["replicas"]):
            out.append(Pod(f"{sts.name}-{i}", sts, tmpl["metadata"]["labels"], tmpl["spec"]))
    return out


def pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, dict[str, Any]]]:
    for d in docs:
        if d.kind == "Pod":
            yield d, d.obj["spec"]
        elif d.kind == "CronJob":
            yield d, d.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif d.kind in WORKLOAD_KINDS:
            yield d, d.obj["spec"]["template"]["spec"]


# --- the kustomization ---------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_one_namespace(docs: list[Doc]) -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kust["resources"]) == sorted(files), "kustomization.yaml resources != files"
    assert not {"namePrefix", "nameSuffix", "commonLabels"} & set(kust), (
        "names are written into cluster.toml and selectors are immutable: "
        "no namePrefix, nameSuffix or commonLabels"
    )
    namespace = kust["namespace"]
    for d in docs:
        if d.kind != "Namespace":
            assert d.obj["metadata"].get("namespace") == namespace, f"{d}: not in {namespace}"
    assert [d.name for d in of_kind(docs, "Namespace")] == [namespace]


@pytest.mark.skipif(
    shutil.which("kubectl") is None and os.environ.get("TRISTORE_KUBECTL") != "1",
    reason="kubectl is not installed (.ci/run installs it and sets TRISTORE_KUBECTL=1)",
)
def test_kubectl_kustomize_builds_every_object(docs: list[Doc]) -> None:
    assert shutil.which("kubectl"), "TRISTORE_KUBECTL=1 but kubectl is not on PATH"
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    built = [o for o in yaml.safe_load_all(out.stdout) if o]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in built) == sorted(
        (d.kind, d.name) for d in docs
    )


# --- schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, latest_version()])
def test_every_manifest_validates_against_the_kubernetes_schemas(
    docs: list[Doc], version: str
) -> None:
    errors = []
    for d in docs:
        if d.kind == "ServiceMonitor":
            continue  # a CRD: test_servicemonitor_matches_its_crd_schema
        try:
            kubernetes_validate.validate(d.obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{d}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{d}: {e.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelt_field(docs: list[Doc]) -> None:
    """Strict mode is what makes the check worth having: typos are errors."""
    sts = of_kind(docs, "StatefulSet")[0].obj
    bad = {**sts, "spec": {**sts["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, OLDEST_KUBERNETES, strict=True)


_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_RELABEL_ACTIONS = [
    "replace",
    "Replace",
    "keep",
    "Keep",
    "drop",
    "Drop",
    "hashmod",
    "HashMod",
    "labelmap",
    "LabelMap",
    "labeldrop",
    "LabelDrop",
    "labelkeep",
    "LabelKeep",
    "lowercase",
    "Lowercase",
    "uppercase",
    "Uppercase",
    "keepequal",
    "KeepEqual",
    "dropequal",
    "DropEqual",
]
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "enum": _RELABEL_ACTIONS},
        "modulus": {"type": "integer"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "separator": {"type": "string"},
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "targetLabel": {"type": "string"},
    },
}
#: The part of the ServiceMonitor CRD's openAPIV3Schema (prometheus-operator,
#: servicemonitors.monitoring.coreos.com, v1) that these manifests may use, with
#: its types, enums and patterns. Stricter than the CRD in one way: an unknown
#: field is an error here, where the API server would silently prune it.
SERVICEMONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": _STRING_MAP,
                "annotations": _STRING_MAP,
            },
        },
        "spec": {
            "type": "object",
            "required": ["endpoints", "selector"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": _STRING_MAP,
                        "matchExpressions": {"type": "array"},
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
                },
                "jobLabel": {"type": "string"},
                "targetLabels": _STRINGS,
                "podTargetLabels": _STRINGS,
                "sampleLimit": {"type": "integer"},
                "targetLimit": {"type": "integer"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["integer", "string"]},
                            "path": {"type": "string"},
                            "scheme": {"type": "string", "enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": _DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "followRedirects": {"type": "boolean"},
                            "enableHttp2": {"type": "boolean"},
                            "filterRunning": {"type": "boolean"},
                            "params": {
                                "type": "object",
                                "additionalProperties": _STRINGS,
                            },
                            "relabelings": {"type": "array", "items": _RELABEL},
                            "metricRelabelings": {"type": "array", "items": _RELABEL},
                        },
                    },
                },
            },
        },
    },
}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))


def test_servicemonitor_matches_its_crd_schema(docs: list[Doc]) -> None:
    (sm,) = of_kind(docs, "ServiceMonitor")
    jsonschema.validate(sm.obj, SERVICEMONITOR_SCHEMA)
    for ep in sm.obj["spec"]["endpoints"]:
        # The operator refuses a timeout longer than the interval.
        if "interval" in ep and "scrapeTimeout" in ep:
            assert _seconds(ep["scrapeTimeout"]) <= _seconds(ep["interval"]), ep
    misspelt = {**sm.obj, "spec": {**sm.obj["spec"], "endpoint": []}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, SERVICEMONITOR_SCHEMA)


def test_servicemonitor_scrapes_every_process_exactly_once(docs: list[Doc]) -> None:
    (sm,) = of_kind(docs, "ServiceMonitor")
    spec = sm.obj["spec"]
    assert "namespaceSelector" not in spec, "the Services are in the ServiceMonitor's namespace"
    services = [
        s
        for s in of_kind(docs, "Service")
        if selects(spec["selector"]["matchLabels"], s.obj["metadata"].get("labels", {}))
    ]
    assert services, "the ServiceMonitor selects no Service"
    cfg = cluster_map(docs)
    metrics_port = {p.name: int(p.metrics.rpartition(":")[2]) for p in _processes(cfg)}
    scraped: dict[str, list[str]] = {name: [] for name in metrics_port}
    for pod in pods(docs):
        for svc in services:
            if not selects(svc.obj["spec"]["selector"], pod.labels):
                continue
            for ep in spec["endpoints"]:
                for port in svc.obj["spec"]["ports"]:
                    if port["name"] != ep["port"]:
                        continue
                    target = port.get("targetPort", port["port"])
                    if isinstance(target, str):
                        target = pod.port(target)
                    assert target == metrics_port[pod.name], (
                        f"{svc}: port {port['name']} of {pod.name} reaches {target}, "
                        f"its metrics are on {metrics_port[pod.name]}"
                    )
                    assert ep.get("path", "/metrics") == "/metrics"
                    scraped[pod.name].append(f"{svc.name}:{port['name']}")
    wrong = {name: via for name, via in scraped.items() if len(via) != 1}
    assert not wrong, f"every process must be scraped once: {wrong}"


def _meta_labels(pod: Pod) -> dict[str, str]:
    """What Kubernetes service discovery tells Prometheus about a pod's target."""
    out = {"__meta_kubernetes_pod_name": pod.name, "job": pod.sts.obj["spec"]["serviceName"]}
    for k, v in pod.labels.items():
        out["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = v
    return out


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str]:
    """Prometheus relabelling, the ``replace`` action only (its default)."""
    out = dict(labels)
    for rule in rules:
        assert rule.get("action", "replace").lower() == "replace", rule
        value = rule.get("separator", ";").join(
            out.get(s, "") for s in rule.get("sourceLabels", [])
        )
        m = re.fullmatch(rule.get("regex", "(.*)"), value)
        if m is None:
            continue
        replacement = re.sub(r"\$(\d+)", r"\\g<\1>", rule.get("replacement", "$1"))
        result = m.expand(replacement)
        if result:
            out[rule["targetLabel"]] = result
        else:
            out.pop(rule["targetLabel"], None)
    return {k: v for k, v in out.items() if not k.startswith("__")}


def test_relabel_follows_prometheus() -> None:
    rules = [
        {"targetLabel": "job", "replacement": "x"},
        {"sourceLabels": ["a"], "regex": "(.+)", "targetLabel": "az", "replacement": "g-$1"},
        {"sourceLabels": ["missing"], "regex": "(.+)", "targetLabel": "az"},
        {"sourceLabels": ["missing"], "targetLabel": "gone"},
    ]
    assert relabel({"a": "0", "gone": "1"}, rules) == {"a": "0", "job": "x", "az": "g-0"}


def test_servicemonitor_gives_the_labels_alerts_and_dashboards_group_by(docs: list[Doc]) -> None:
    """deploy/prometheus/prometheus.yml's contract: job tristore; cluster, role,
    az (a witness's group-G, none for a replicator) and process (its name in the
    cluster map), as tristore_process_info reports them; honor_labels."""
    (sm,) = of_kind(docs, "ServiceMonitor")
    cfg = cluster_map(docs)
    (ep,) = sm.obj["spec"]["endpoints"]
    assert ep.get("honorLabels") is True
    problems = []
    for pod in pods(docs):
        got = relabel(_meta_labels(pod), ep.get("relabelings", []))
        want = {"job": "tristore", "cluster": cfg.cluster.name, "role": pod.role}
        want |= {"process": pod.name, "instance": pod.name}
        if pod.role == "node":
            want["az"] = cfg.node_named(pod.name).az
        elif pod.role == "witness":
            want["az"] = f"group-{cfg.witness_named(pod.name).group}"
        if got != want:
            problems.append(f"{pod.name}: target labels {got}, want {want}")
    assert not problems, "\n".join(problems)


# --- the cluster map against the workloads -------------------------------------------


def _processes(
    cfg: config.ClusterConfig,
) -> list[config.NodeSpec | config.WitnessSpec | config.ReplicatorSpec]:
    return [*cfg.nodes, *cfg.witnesses, *cfg.replicators]


def _role_of(spec: Any) -> str:
    return {
        config.NodeSpec: "node",
        config.WitnessSpec: "witness",
        config.ReplicatorSpec: "replicator",
    }[type(spec)]


def test_the_configmap_loads_through_the_config_loader(docs: list[Doc], tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(the_configmap(docs).obj["data"]["cluster.toml"])
    cfg = config.load(path, env={})
    assert cfg.cluster.name and len(cfg.azs) >= 3
    assert cfg.nodes and cfg.witnesses and cfg.replicators
    assert Path(cfg.cluster.data_dir).is_absolute(), "a relative data_dir is relative to /etc"


def test_only_statefulsets_run_tristore(docs: list[Doc]) -> None:
    """Every process has a name in the cluster map, so it needs a stable pod
    name, and must never run twice at once (a witness's incarnation fence and a
    replicator's share both assume it): a StatefulSet, never a Deployment."""
    wrong = [str(d) for d, _ in pod_templates(docs) if d.kind != "StatefulSet"]
    assert not wrong, f"run these as StatefulSets: {wrong}"
    assert len(of_kind(docs, "StatefulSet")) >= 5


def test_the_config_names_exactly_the_processes_the_statefulsets_run(docs: list[Doc]) -> None:
    cfg = cluster_map(docs)
    running = {(p.role, p.name) for p in pods(docs)}
    named = {(_role_of(s), s.name) for s in _processes(cfg)}
    assert running == named, (
        f"run but not in cluster.toml: {sorted(running - named)}; "
        f"in cluster.toml but not run: {sorted(named - running)}"
    )
    assert {role for role, _ in running} == set(ROLES)


def test_each_process_finds_its_config_name_and_addresses(docs: list[Doc]) -> None:
    cfg = cluster_map(docs)
    cm = the_configmap(docs)
    specs = {s.name: s for s in _processes(cfg)}
    headless = {s.name: s for s in of_kind(docs, "Service")}
    problems = []
    for pod in pods(docs):
        c, spec, sts = pod.container, specs[pod.name], pod.sts.obj
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
        config_vol = next(n for n, v in volumes.items() if "configMap" in v)
        if volumes[config_vol]["configMap"]["name"] != cm.name:
            problems.append(f"{pod.name}: mounts ConfigMap {volumes[config_vol]}, not {cm.name}")
        want_args = ["serve", pod.role, "--config", f"{mounts[config_vol]}/cluster.toml"]
        if c["args"] != [*want_args, "--name", "$(POD_NAME)"]:
            problems.append(f"{pod.name}: args {c['args']}")
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("POD_NAME", {}).get("valueFrom") != {"fieldRef": {"fieldPath": "metadata.name"}}:
            problems.append(f"{pod.name}: POD_NAME is not the pod's name")
        svc = headless.get(sts["spec"]["serviceName"])
        if svc is None or svc.obj["spec"].get("clusterIP") != "None":
            problems.append(f"{pod.name}: serviceName is not a headless Service")
            continue
        if not svc.obj["spec"].get("publishNotReadyAddresses"):
            problems.append(f"{svc}: peers must resolve pods that are not ready yet")
        if not selects(svc.obj["spec"]["selector"], pod.labels):
            problems.append(f"{svc}: does not select {pod.name}")
        host = f"{pod.name}.{svc.name}.{svc.obj['metadata']['namespace']}.{CLUSTER_DOMAIN}"
        kinds = ("grpc", "metrics", "s3") if pod.role == "node" else ("grpc", "metrics")
        if pod.role == "node":
            # The door, where the SDK looks for it: the gRPC port + the offset.
            door = next((p for p in svc.obj["spec"]["ports"] if p["name"] == "door"), None)
            if pod.port("door") != pod.port("grpc") + cfg.tls.door_port_offset or door is None:
                problems.append(f"{pod.name}: no door at its gRPC port + door_port_offset")
        for kind in kinds:
            want = f"{host}:{pod.port(kind)}"
            if getattr(spec, kind) != want:
                problems.append(f"{pod.name}: {kind} is {getattr(spec, kind)}, the pod is {want}")
            svc_port = next((p for p in svc.obj["spec"]["ports"] if p["name"] == kind), None)
            if svc_port is None or svc_port.get("targetPort") not in (kind, pod.port(kind)):
                problems.append(f"{svc}: no {kind} port reaching the pod's")
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
        # A node's or replicator's RocksDB is data_dir/<name>: data_dir must be the volume.
        if pod.role in ("node", "replicator") and (
            mounts.get("data") != cfg.cluster.data_dir or "data" not in claims
        ):
            problems.append(f"{pod.name}: data_dir {cfg.cluster.data_dir} is not its volume")
    assert not problems, "\n".join(problems)


def test_the_api_service_reaches_every_nodes_grpc_s3_and_door(docs: list[Doc]) -> None:
    """The in-cluster client Service: gRPC, the S3 HTTP API and the door of
    every storage node, and of nothing else."""
    (api,) = [s for s in of_kind(docs, "Service") if s.name.endswith("-api")]
    assert api.obj["spec"]["type"] == "ClusterIP", "never exposed outside the cluster"
    ports = {p["name"]: p for p in api.obj["spec"]["ports"]}
    assert set(ports) == {"grpc", "s3", "door"}, ports
    assert ports["door"]["port"] == ports["grpc"]["port"] + DOOR_PORT_OFFSET
    selected = [p for p in pods(docs) if selects(api.obj["spec"]["selector"], p.labels)]
    assert selected and all(p.role == "node" for p in selected)
    for pod in selected:
        for kind, port in ports.items():
            assert port["targetPort"] in (kind, pod.port(kind)), f"{api}: {kind} -> {pod.name}"


def test_every_node_mounts_the_clusters_master_keys(docs: list[Doc]) -> None:
    """A node does not start without ``[kms] key_file``, and all nodes must read
    the same keys: one Secret, mounted where the config says, readable by the
    pod's group only."""
    key_file = cluster_map(docs).kms_key_file
    secrets: set[str] = set()
    for pod in pods(docs):
        if pod.role != "node":
            continue
        mounts = {m["mountPath"]: m for m in pod.container.get("volumeMounts", [])}
        mount = mounts.get(str(key_file.parent))
        assert mount is not None and mount.get("readOnly"), f"{pod.name}: no keys at {key_file}"
        (vol,) = [v for v in pod.spec["volumes"] if v["name"] == mount["name"]]
        assert vol["secret"]["defaultMode"] == 0o440, f"{pod.name}: {vol}"
        assert pod.spec["securityContext"]["fsGroup"] == 10001, pod.name
        secrets.add(vol["secret"]["secretName"])
    assert len(secrets) == 1, f"every node must read the same master keys: {secrets}"


def _mount_of(pod: Pod, path: Path) -> dict[str, Any]:
    """The volume of ``pod`` mounted at ``path``'s directory (read-only, a
    Secret of mode 0440: readable by the pod's group, fsGroup 10001)."""
    mounts = {m["mountPath"]: m for m in pod.container.get("volumeMounts", [])}
    mount = mounts.get(str(path.parent))
    assert mount is not None, f"{pod.name}: nothing mounted at {path.parent} (for {path})"
    assert mount.get("readOnly"), f"{pod.name}: mount {path.parent} read-only"
    (vol,) = [v for v in pod.spec["volumes"] if v["name"] == mount["name"]]
    assert "secret" in vol and vol["secret"]["defaultMode"] == 0o440, f"{pod.name}: {vol}"
    return dict(vol["secret"])


def test_the_config_runs_tls_and_signed_requests(docs: list[Doc]) -> None:
    """Secure by default: no plaintext, signatures checked, a root key named."""
    text = the_configmap(docs).obj["data"]["cluster.toml"]
    assert not re.search(r"^\s*insecure\s*=\s*true", text, re.M), "no insecure config"
    cfg = cluster_map(docs)
    assert not cfg.tls.insecure and cfg.auth.enabled
    assert cfg.auth.root_access_key_id and cfg.auth.root_secret_file
    for path in (cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.key_file, cfg.auth.root_secret_file):
        assert Path(path).is_absolute(), f"{path}: relative paths are relative to /etc/tristore"


def test_every_pod_mounts_its_certificate_and_nodes_the_root_key(docs: list[Doc]) -> None:
    """Every pod reads its certificate, key and the CA from one Secret; nodes and
    replicators (they sign their own calls as root) the sealed root key and the
    master keys that open it. One Secret of each kind for all pods."""
    cfg = cluster_map(docs)
    names: dict[str, set[str]] = {"tls": set(), "root": set(), "kms": set()}
    for pod in pods(docs):
        files = cfg.tls_files(pod.name)
        assert files.cert is not None and files.key is not None
        assert {files.ca.parent, files.key.parent} == {files.cert.parent}, pod.name
        names["tls"].add(_mount_of(pod, files.cert)["secretName"])
        if pod.role in ("node", "replicator"):
            names["root"].add(_mount_of(pod, Path(cfg.auth.root_secret_file))["secretName"])
            names["kms"].add(_mount_of(pod, cfg.kms_key_file)["secretName"])
        assert pod.spec["securityContext"]["fsGroup"] == 10001, pod.name
    assert all(len(v) == 1 for v in names.values()), names
    assert len(set().union(*names.values())) == 3, f"three Secrets: {names}"


def test_bootstrap_makes_the_secrets_files(docs: list[Doc], tmp_path: Path) -> None:
    """docs/operations.md's `tristore admin bootstrap --dest DIR` on the ConfigMap's map:
    each Secret's files in one directory, a certificate for every pod naming
    its role and the API Service, keys 0600, no CA key among them."""
    from cryptography import x509

    from tristore import credentials, tls
    from tristore.cli.bootstrap import bootstrap, rebase

    cfg = cluster_map(docs)
    made = rebase(cfg, tmp_path / "out")
    result = bootstrap([made], tmp_path / "ca", ["east-api.tristore.svc"])
    assert len(result["certificates"]) == len(pods(docs))
    for pod in pods(docs):
        files = made.tls_files(pod.name)
        assert files.cert is not None and files.key is not None
        assert files.key.stat().st_mode & 0o777 == 0o600
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [tls.Identity(cfg.cluster.name, pod.role, pod.name).uri]
        dns = san.get_values_for_type(x509.DNSName)
        assert ("east-api.tristore.svc" in dns) == (pod.role == "node"), dns
    assert not list((tmp_path / "out").rglob("ca.key"))
    assert credentials.root_credentials(made) is not None


def _doc_block(first: str) -> list[str]:
    """The shell lines (continuations joined) of the README's (or docs/') code
    block that holds a line starting with ``first``."""
    root = K8S.parents[1]
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        if not page.exists():
            continue
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S):
            lines = block.replace("\\\n", " ").splitlines()
            if any(line.startswith(first) for line in lines):
                return [re.sub(r"\s+#.*$", "", line).strip() for line in lines]
    raise AssertionError(f"no code block with {first!r} in the README or docs/")


@pytest.mark.skipif(
    shutil.which("kubectl") is None and os.environ.get("TRISTORE_KUBECTL") != "1",
    reason="kubectl is not installed (.ci/run installs it and sets TRISTORE_KUBECTL=1)",
)
def test_the_readmes_secret_steps_make_every_file_the_pods_mount(
    docs: list[Doc], tmp_path: Path
) -> None:
    """The README's Kubernetes steps, run as written (the Secrets with
    `--dry-run=client`; the first line, which asks an API server to parse the
    manifest, from the manifest itself): each Secret holds every file the
    pods that mount it read."""
    import base64
    import sys

    lines = _doc_block("tristore admin bootstrap --config east.toml")
    (tmp_path / "east.toml").write_text(the_configmap(docs).obj["data"]["cluster.toml"])
    (boot,) = [line for line in lines if line.startswith("tristore admin bootstrap")]
    run = subprocess.run(
        [sys.executable, "-m", "tristore", *boot.split()[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    secrets: dict[str, dict[str, bytes]] = {}
    for line in lines:
        if not line.startswith("kubectl -n tristore create secret generic"):
            continue
        out = subprocess.run(
            [*line.split(), "--dry-run=client", "-o", "yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, f"{line}: {out.stderr}"
        secret = yaml.safe_load(out.stdout)
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        secrets[secret["metadata"]["name"]] = data
    cfg = cluster_map(docs)
    for pod in pods(docs):
        files = cfg.tls_files(pod.name)
        needed = [p for p in (files.cert, files.key, files.ca) if p is not None]
        if pod.role in ("node", "replicator"):
            needed += [Path(cfg.auth.root_secret_file), cfg.kms_key_file]
        for path in needed:
            name = _mount_of(pod, path)["secretName"]
            assert name in secrets, f"{pod.name} mounts Secret {name}, which no step makes"
            assert secrets[name].get(path.name), f"Secret {name} lacks {path.name} ({pod.name})"
    assert not any("ca.key" in data for data in secrets.values()), "the CA key stays out"


def _zones(pod_spec: dict[str, Any]) -> list[str]:
    terms = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [
        v
        for term in terms["nodeSelectorTerms"]
        for e in term["matchExpressions"]
        if e["key"] == ZONE_KEY and e["operator"] == "In"
        for v in e["values"]
    ]


def test_each_az_is_one_statefulset_pinned_to_its_zone(docs: list[Doc]) -> None:
    cfg = cluster_map(docs)
    by_sts: dict[str, set[str]] = {}
    for pod in pods(docs):
        if pod.role == "node":
            by_sts.setdefault(pod.sts.name, set()).add(cfg.node_named(pod.name).az)
    pinned = {}
    for sts_name, azs in by_sts.items():
        (sts,) = [d for d in of_kind(docs, "StatefulSet") if d.name == sts_name]
        tmpl = sts.obj["spec"]["template"]
        zones = _zones(tmpl["spec"])
        assert len(azs) == 1, f"{sts}: runs nodes of several AZs {azs}"
        assert zones == sorted(azs), f"{sts}: AZ {azs} but pinned to zones {zones}"
        assert tmpl["metadata"]["labels"].get("tristore.io/az") in azs, sts
        pinned[sts_name] = zones[0]
        spread = tmpl["spec"].get("topologySpreadConstraints", [])
        assert any(
            t["topologyKey"] == "kubernetes.io/hostname"
            and selects(t["labelSelector"]["matchLabels"], tmpl["metadata"]["labels"])
            for t in spread
        ), f"{sts}: the nodes of one AZ should not share a host"
    assert sorted(pinned.values()) == sorted(cfg.azs), "one StatefulSet per AZ"


def test_witnesses_spread_over_zones(docs: list[Doc]) -> None:
    for pod in pods(docs):
        if pod.role != "witness":
            continue
        spread = pod.spec.get("topologySpreadConstraints", [])
        assert any(
            t["topologyKey"] == ZONE_KEY
            and t["whenUnsatisfiable"] == "DoNotSchedule"
            and selects(t["labelSelector"]["matchLabels"], pod.labels)
            for t in spread
        ), f"{pod.name}: a lost zone must not take a witness majority with it"


def test_every_selector_selects_something(docs: list[Doc]) -> None:
    labels = [p.labels for p in pods(docs)]
    for d in [*of_kind(docs, "Service"), *of_kind(docs, "PodDisruptionBudget")]:
        spec = d.obj["spec"]
        sel = spec["selector"].get("matchLabels", spec["selector"])
        assert any(selects(sel, lab) for lab in labels), f"{d} selects no pod"
    for sts in of_kind(docs, "StatefulSet"):
        sel = sts.obj["spec"]["selector"]["matchLabels"]
        assert selects(sel, sts.obj["spec"]["template"]["metadata"]["labels"]), sts


# --- security and probes -------------------------------------------------------------


def test_every_container_runs_as_non_root_and_has_probes(docs: list[Doc]) -> None:
    problems = []
    checked = 0
    for d, spec in pod_templates(docs):
        pod_sc = spec.get("securityContext", {})
        if spec.get("enableServiceLinks") is not False:
            problems.append(f"{d}: service links can inject TRISTORE_* variables")
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            checked += 1
            where = f"{d} container {c['name']}"
            sc = {**pod_sc, **c.get("securityContext", {})}
            if sc.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not isinstance(sc.get("runAsUser"), int) or sc["runAsUser"] == 0:
                problems.append(f"{where}: no non-zero runAsUser")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities are not all dropped")
            if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(kind, {})):
                    problems.append(f"{where}: no cpu and memory {kind}")
            if c in spec.get("initContainers", []):
                continue
            metrics = [p["name"] for p in c["ports"] if p["name"] == "metrics"]
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe not in c:
                    if probe != "startupProbe":
                        problems.append(f"{where}: no {probe}")
                    continue
                # /healthz: 200 once the process serves, 503 while it drains. The
                # kubelet's gRPC probe speaks plaintext only, and gRPC is TLS.
                action = c[probe].get("httpGet")
                if (
                    action is None
                    or action.get("path") != "/healthz"
                    or [action["port"]] != metrics
                ):
                    problems.append(f"{where}: {probe} is not GET /healthz on the metrics port")
                elif action.get("scheme", "HTTP") != "HTTP":
                    problems.append(f"{where}: {probe}: /healthz is plain HTTP")
    assert checked >= 5, "found too few containers; is the walk broken?"
    assert not problems, "\n".join(problems)
