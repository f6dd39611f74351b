"""The dev launcher's plan of one and of two clusters: names, ports, paths,
remotes and the ready message, with no process started."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tristore import credentials
from tristore.cli import dev
from tristore.cli.util import CliError
from tristore.config import ClusterConfig, dump, parse
from tristore.errors import InvalidArgument

pytestmark = pytest.mark.unit

BASE = 7100
LOCAL = ["a1", "a2", "b1", "b2", "c1", "c2", "w1", "w2", "w3", "r1", "r2"]


def two(tmp_path: Path, base: int = BASE) -> tuple[dict[Path, ClusterConfig], dev.Layout]:
    return dev.plan_dir(dev.DevDir(tmp_path), 2, 3, 2, base, witnesses=3, replicators=2)


def ports(addr: str) -> int:
    return int(addr.rpartition(":")[2])


def test_one_cluster_plan_is_what_it_was(tmp_path: Path) -> None:
    d = dev.DevDir(tmp_path)
    cfgs, layout = dev.plan_dir(d, 1, 3, 2, BASE, witnesses=3, replicators=2)
    assert list(cfgs) == [tmp_path / "cluster.toml"]
    cfg = cfgs[tmp_path / "cluster.toml"]
    assert (cfg.cluster.name, cfg.cluster.id) == ("local", 1)
    assert cfg.cluster.data_dir == str(tmp_path / "data") and cfg.remotes == ()
    assert [p.name for p in layout.processes] == LOCAL
    assert dev.plan(3, 2, BASE, d.data, 3, 2) == (cfg, layout)


def test_replicators_come_after_the_witnesses(tmp_path: Path) -> None:
    cfg, layout = dev.plan(3, 2, BASE, tmp_path, witnesses=3, replicators=2)
    assert [(r.name, r.grpc, r.metrics) for r in cfg.replicators] == [
        ("r1", "127.0.0.1:7110", "127.0.0.1:7210"),
        ("r2", "127.0.0.1:7111", "127.0.0.1:7211"),
    ]
    reps = [p for p in layout.processes if p.role == "replicator"]
    assert [(p.name, p.cluster, p.az) for p in reps] == [
        ("r1", "local", None),
        ("r2", "local", None),
    ]
    assert dev.plan(3, 2, BASE, tmp_path)[0].replicators == ()


def test_two_clusters_east_and_west(tmp_path: Path) -> None:
    cfgs, layout = two(tmp_path)
    assert list(cfgs) == [tmp_path / "east" / "cluster.toml", tmp_path / "west" / "cluster.toml"]
    east, west = cfgs.values()
    assert (east.cluster.name, east.cluster.id) == ("east", 1)
    assert (west.cluster.name, west.cluster.id) == ("west", 2)
    assert east.cluster.data_dir == str(tmp_path / "east" / "data")
    assert west.cluster.data_dir == str(tmp_path / "west" / "data")
    # Inside each map the names are the plain ones; the launcher prefixes them.
    assert [n.name for n in west.nodes] == LOCAL[:6]
    assert [p.name for p in layout.processes] == [
        f"{c}/{n}" for c in ("east", "west") for n in LOCAL
    ]
    assert [p.cluster for p in layout.processes] == ["east"] * 11 + ["west"] * 11
    assert layout.cluster_names == ["east", "west"]
    assert (layout.clusters, layout.replicators) == (2, 2)


def test_two_clusters_port_plan(tmp_path: Path) -> None:
    _, layout = two(tmp_path)
    east = [p for p in layout.processes if p.cluster == "east"]
    west = [p for p in layout.processes if p.cluster == "west"]
    assert [ports(p.grpc) for p in east] == list(range(BASE + 1, BASE + 12))
    assert [ports(p.metrics) for p in east] == list(range(BASE + 101, BASE + 112))
    assert [ports(p.grpc) for p in west] == list(range(BASE + 201, BASE + 212))
    assert [ports(p.metrics) for p in west] == list(range(BASE + 301, BASE + 312))
    every = [ports(a) for p in layout.processes for a in (p.grpc, p.metrics)]
    assert len(set(every)) == len(every)
    assert min(every) > BASE and max(every) <= BASE + 2 * dev.CLUSTER_PORT_STRIDE


def test_two_clusters_name_each_other_as_remotes(tmp_path: Path) -> None:
    cfgs, _ = two(tmp_path)
    east, west = cfgs.values()
    assert [r.name for r in east.remotes] == ["west"]
    assert [r.name for r in west.remotes] == ["east"]
    west_nodes = [n.grpc for n in west.nodes]
    east_nodes = [n.grpc for n in east.nodes]
    assert east.remotes[0].endpoint_list == west_nodes
    assert west.remotes[0].endpoint_list == east_nodes


def test_two_cluster_maps_survive_dump_and_load(tmp_path: Path) -> None:
    for cfg in two(tmp_path)[0].values():
        again = parse(tomllib.loads(dump(cfg)), env={})
        assert again == cfg


def test_paths_of_process_names(tmp_path: Path) -> None:
    d = dev.DevDir(tmp_path)
    assert dev.split_name("west/a1") == ("west", "a1")
    assert dev.split_name("a1") == (None, "a1")
    assert d.pid_file("west/a1") == tmp_path / "west" / "run" / "a1.pid"
    assert d.log("east/r2") == tmp_path / "east" / "logs" / "r2.log"
    assert d.config_of("west/w1") == tmp_path / "west" / "cluster.toml"
    assert d.pid_file("a1") == tmp_path / "run" / "a1.pid"
    assert d.log("a1") == tmp_path / "logs" / "a1.log"
    assert d.config_of("a1") == d.config == tmp_path / "cluster.toml"
    assert dev.Proc("west/a1", "node", "west", "az-a", "x:1", "x:2").local_name == "a1"


def test_layout_json_round_trips_and_reads_old_state(tmp_path: Path) -> None:
    _, layout = two(tmp_path)
    assert dev.Layout.from_json(json.loads(json.dumps(layout.to_json()))) == layout
    _, one = dev.plan(3, 2, BASE, tmp_path, witnesses=3)
    old = one.to_json()
    del old["replicators"]  # written before replicators existed
    assert dev.Layout.from_json(old).replicators == 0


def test_names_in_a_two_cluster_layout(tmp_path: Path) -> None:
    _, layout = two(tmp_path)
    assert layout.proc("west/a1", tmp_path).grpc == f"127.0.0.1:{BASE + 201}"
    with pytest.raises(CliError, match="say which: east/a1, west/a1"):
        layout.proc("a1", tmp_path)
    with pytest.raises(CliError, match=r"valid names: east/a1, .*, west/r2"):
        layout.proc("zz", tmp_path)


@pytest.mark.parametrize(
    ("clusters", "base", "witnesses", "replicators"),
    [
        (2, 64400, 3, 2),  # west would run past port 65535; one cluster fits
        (1, 7100, 3, 92),  # more than 100 processes
        (3, 7100, 3, 2),
        (1, 7100, 3, -1),
    ],
)
def test_impossible_layouts(
    tmp_path: Path, clusters: int, base: int, witnesses: int, replicators: int
) -> None:
    with pytest.raises(InvalidArgument):
        dev.plan_dir(dev.DevDir(tmp_path), clusters, 3, 2, base, witnesses, replicators)


def test_one_cluster_fits_where_two_do_not(tmp_path: Path) -> None:
    # The internal ports (gRPC port + 1000) are the highest a cluster uses.
    dev.plan_dir(dev.DevDir(tmp_path), 1, 3, 2, 64400, 3, 2)


def test_no_replicators_by_default_without_witnesses() -> None:
    assert dev.default_replicators(0) == 0
    assert dev.default_replicators(3) in (0, dev.DEFAULT_REPLICATORS)


def _ready(tmp_path: Path, clusters: int, capsys: pytest.CaptureFixture[str]) -> list[str]:
    d = dev.DevDir(tmp_path)
    _, layout = dev.plan_dir(d, clusters, 3, 2, BASE, witnesses=3)
    dev._print_ready(d, layout)  # nothing runs: every row is DOWN, no port is probed
    return capsys.readouterr().out.splitlines()


def test_ready_message_of_one_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _ready(tmp_path, 1, capsys)
    endpoints = ",".join(f"127.0.0.1:{BASE + i}" for i in range(1, 7))
    flag = f" --dir {tmp_path}"
    assert out[10:] == [
        "",
        f"export TRISTORE_ENDPOINT={endpoints}",
        f"export TRISTORE_CA_BUNDLE={tmp_path / 'tls' / 'ca.crt'}",
        "",
        "next steps:",
        "  tristore mb s3://demo",
        "  echo hello | tristore cp - s3://demo/hello.txt && tristore ls s3://demo",
        "  tristore admin status",
        f"  tristore dev kill a1{flag} --signal KILL   # then: tristore dev start a1{flag}",
        f"  tristore dev down{flag}                    # logs: {tmp_path / 'logs'}",
    ]


def test_ready_message_of_two_clusters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _ready(tmp_path, 2, capsys)
    assert out[0].split() == ["NAME", "ROLE", "CLUSTER", "AZ", "PID", "GRPC", "METRICS", "UP"]
    assert out[1].split()[:3] == ["east/a1", "node", "east"]
    exports = [line for line in out if line.startswith("export TRISTORE_ENDPOINT=")]
    east = ",".join(f"127.0.0.1:{BASE + i}" for i in range(1, 7))
    west = ",".join(f"127.0.0.1:{BASE + 200 + i}" for i in range(1, 7))
    assert exports == [
        f"export TRISTORE_ENDPOINT={east}   # cluster east",
        f"export TRISTORE_ENDPOINT={west}   # cluster west",
    ]
    assert f"export TRISTORE_CA_BUNDLE={tmp_path / 'tls' / 'ca.crt'}   # both clusters" in out
    assert any("tristore dev kill west/a1" in line for line in out)


def test_nodes_serve_s3_on_their_grpc_port_plus_500(tmp_path: Path) -> None:
    cfg = dev.plan_cluster("local", 0, 3, 2, BASE, tmp_path / "data", witnesses=3)
    assert [n.s3 for n in cfg.nodes] == [f"127.0.0.1:{BASE + 500 + i}" for i in range(1, 7)]
    # The map as written still parses, s3 addresses included.
    assert parse(tomllib.loads(dump(cfg))).nodes == cfg.nodes
    creds = credentials.Credentials("AKTESTKEY0000000", "secret")
    lines = dev.s3_exports(cfg, creds)
    assert lines[0] == f"export AWS_ENDPOINT_URL=https://127.0.0.1:{BASE + 501}"
    assert "export AWS_ACCESS_KEY_ID=AKTESTKEY0000000" in lines
    assert "export AWS_DEFAULT_REGION=us-east-1" in lines
    assert lines[-1].startswith("export AWS_CA_BUNDLE=")
    plain = dev.plan_cluster(
        "local",
        0,
        3,
        1,
        BASE,
        tmp_path / "data",
        tls_section=dev.dev_tls(tmp_path, tmp_path, insecure=True),
    )
    lines = dev.s3_exports(plain, None)
    assert lines == [
        f"export AWS_ENDPOINT_URL=http://127.0.0.1:{BASE + 501}",
        "export AWS_DEFAULT_REGION=us-east-1",
    ]
