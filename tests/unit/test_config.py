"""Cluster configuration: TOML -> frozen dataclasses, env overrides, checks."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tristore import config, errors

from .clusters import node_table

pytestmark = pytest.mark.unit

FULL_TOML = """
[cluster]
name = "east"
id = 2
epoch = 9
data_dir = "state"

[node]
chunk_size = 524288
inline_max = 32768
max_object_size = 1073741824
replica_timeout_s = 2.5
peer_down_s = 0.5
gc_grace_s = 120.0
group_commit_max = 64
clock_offset_ms = -250
read_threads = 2

[[nodes]]
name = "a1"
id = 1
az = "az-a"
grpc = "127.0.0.1:7101"
metrics = "127.0.0.1:9101"

[[nodes]]
name = "b1"
id = 2
az = "az-b"
grpc = "127.0.0.1:7102"
metrics = "127.0.0.1:9102"

[[nodes]]
name = "c1"
id = 3
az = "az-c"
grpc = "127.0.0.1:7103"
metrics = "127.0.0.1:9103"

[[nodes]]
name = "c2"
id = 4
az = "az-c"
grpc = "127.0.0.1:7104"
metrics = "127.0.0.1:9104"
"""


def _parse(raw: dict[str, Any], env: dict[str, str] | None = None) -> config.ClusterConfig:
    return config.parse(raw, env=env or {})


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(FULL_TOML)
    cfg = config.load(path, env={})
    assert cfg.cluster == config.ClusterSection(name="east", id=2, epoch=9, data_dir="state")
    n = cfg.node
    assert (n.chunk_size, n.inline_max, n.max_object_size) == (524288, 32768, 1024**3)
    assert (n.replica_timeout_s, n.peer_down_s, n.gc_grace_s) == (2.5, 0.5, 120.0)
    assert (n.group_commit_max, n.clock_offset_ms, n.read_threads) == (64, -250, 2)
    assert n.hint_interval_s == config.NodeSection.hint_interval_s  # not in the file: default
    assert [s.name for s in cfg.nodes] == ["a1", "b1", "c1", "c2"]
    assert cfg.node_named("c2") == config.NodeSpec(
        "c2", 4, "az-c", "127.0.0.1:7104", "127.0.0.1:9104"
    )
    assert cfg.azs == ("az-a", "az-b", "az-c")
    assert cfg.path == str(path.resolve())
    # A relative data_dir is relative to the config file, not to the cwd.
    assert cfg.data_dir_for("a1") == tmp_path / "state" / "a1"


def test_config_is_frozen(raw_config: dict[str, Any]) -> None:
    cfg = _parse(raw_config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.node.chunk_size = 1  # type: ignore[misc]


def test_defaults() -> None:
    cfg = _parse({})
    assert cfg == config.ClusterConfig()
    assert cfg.nodes == ()
    assert cfg.cluster.name == "local" and cfg.cluster.id == 1 and cfg.cluster.epoch == 1
    assert cfg.node.chunk_size == 1024 * 1024
    assert cfg.node.inline_max == 64 * 1024
    assert cfg.node.max_object_size == 5 * 1024**3
    assert cfg.node.gc_grace_s == 600.0


def test_absolute_data_dir_is_kept(raw_config: dict[str, Any], tmp_path: Path) -> None:
    raw_config["cluster"]["data_dir"] = str(tmp_path / "abs")
    cfg = config.parse(raw_config, env={}, path=str(tmp_path / "elsewhere" / "c.toml"))
    assert cfg.data_dir_for("a1") == tmp_path / "abs" / "a1"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["node"].update(chunk_sise=1), "chunk_sise"),
        (lambda r: r["cluster"].update(nmae="x"), "nmae"),
        (lambda r: r.update(bogus={}), "bogus"),
        (lambda r: r["nodes"][0].update(zone="z"), "zone"),
    ],
    ids=["node-key", "cluster-key", "section", "nodes-key"],
)
def test_unknown_keys_are_rejected(raw_config: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw_config)
    with pytest.raises(errors.InvalidArgument, match=message) as info:
        _parse(raw_config)
    assert "known" in str(info.value), "the message should list what is allowed"


def test_unknown_key_message_lists_the_known_ones(raw_config: dict[str, Any]) -> None:
    raw_config["node"]["chunk_sise"] = 1
    with pytest.raises(errors.InvalidArgument) as info:
        _parse(raw_config)
    assert "[node]" in info.value.message and "chunk_size" in info.value.message


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("node", "chunk_size", "big"),
        ("node", "chunk_size", 1.5),  # must not be truncated to 1
        ("node", "chunk_size", True),
        ("node", "peer_down_s", "soon"),
        ("node", "peer_down_s", True),
        ("cluster", "name", 5),
        ("cluster", "id", [1]),
    ],
)
def test_wrong_types_are_rejected(
    raw_config: dict[str, Any], section: str, key: str, value: Any
) -> None:
    raw_config[section][key] = value
    with pytest.raises(errors.InvalidArgument, match=f"{key}: expected"):
        _parse(raw_config)


def test_integral_float_is_accepted_as_int(raw_config: dict[str, Any]) -> None:
    raw_config["node"]["chunk_size"] = 262144.0
    assert _parse(raw_config).node.chunk_size == 262144


def test_env_overrides_the_file(raw_config: dict[str, Any]) -> None:
    env = {
        "TRISTORE_NODE_CHUNK_SIZE": "131072",
        "TRISTORE_NODE_PEER_DOWN_S": "2.5",
        "TRISTORE_CLUSTER_NAME": "from-env",
        "TRISTORE_CLUSTER_EPOCH": " 12 ",
        "TRISTORE_ENDPOINT": "127.0.0.1:1",  # a client setting: not a config key
    }
    cfg = _parse(raw_config, env)
    assert cfg.node.chunk_size == 131072
    assert cfg.node.peer_down_s == 2.5
    assert cfg.cluster.name == "from-env"
    assert cfg.cluster.epoch == 12
    assert cfg.node.inline_max == 65536  # untouched


def test_env_defaults_to_os_environ(
    raw_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRISTORE_NODE_CHUNK_SIZE", "65536")
    assert config.parse(raw_config).node.chunk_size == 65536


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRISTORE_NODE_CHUNK_SIZE", "abc"),
        ("TRISTORE_NODE_CHUNK_SIZE", "1.5"),
        ("TRISTORE_NODE_CHUNK_SIZE", ""),
        ("TRISTORE_NODE_PEER_DOWN_S", "fast"),
        ("TRISTORE_CLUSTER_ID", "one"),
    ],
)
def test_bad_env_values_name_the_variable(
    raw_config: dict[str, Any], name: str, value: str
) -> None:
    with pytest.raises(errors.InvalidArgument, match=name):
        _parse(raw_config, {name: value})


def test_env_values_are_checked_like_file_values(raw_config: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidArgument, match="chunk_size"):
        _parse(raw_config, {"TRISTORE_NODE_CHUNK_SIZE": "1024"})


def test_fewer_than_three_azs_is_rejected() -> None:
    raw = {"nodes": node_table(("az-a", "az-b"), 3)}
    with pytest.raises(errors.InvalidArgument, match="three AZs") as info:
        _parse(raw)
    assert "az-a" in info.value.message and "az-b" in info.value.message


def test_four_azs_are_fine() -> None:
    cfg = _parse({"nodes": node_table(("az-a", "az-b", "az-c", "az-d"), 1)})
    assert len(cfg.azs) == 4


def test_duplicate_names_are_rejected(raw_config: dict[str, Any]) -> None:
    raw_config["nodes"][1]["name"] = raw_config["nodes"][0]["name"]
    with pytest.raises(errors.InvalidArgument, match="names must be unique"):
        _parse(raw_config)


@pytest.mark.parametrize("bad_id", ["dup", 0, 65536, -1])
def test_bad_or_duplicate_ids_are_rejected(raw_config: dict[str, Any], bad_id: Any) -> None:
    raw_config["nodes"][1]["id"] = raw_config["nodes"][0]["id"] if bad_id == "dup" else bad_id
    with pytest.raises(errors.InvalidArgument, match="ids must be unique"):
        _parse(raw_config)


def test_cluster_id_range(raw_config: dict[str, Any]) -> None:
    raw_config["cluster"]["id"] = 65536
    with pytest.raises(errors.InvalidArgument, match=r"\[cluster\] id"):
        _parse(raw_config)


def test_missing_node_fields(raw_config: dict[str, Any]) -> None:
    del raw_config["nodes"][2]["grpc"]
    del raw_config["nodes"][2]["metrics"]
    with pytest.raises(errors.InvalidArgument, match=r"#3 is missing grpc, metrics"):
        _parse(raw_config)


def test_chunk_and_inline_limits(raw_config: dict[str, Any]) -> None:
    raw_config["node"].update(chunk_size=65536, inline_max=65537)
    with pytest.raises(errors.InvalidArgument, match="inline_max"):
        _parse(raw_config)
    raw_config["node"].update(chunk_size=8 * 1024 * 1024, inline_max=1)
    with pytest.raises(errors.InvalidArgument, match="chunk_size"):
        _parse(raw_config)


def test_node_named_lists_the_nodes(raw_config: dict[str, Any]) -> None:
    cfg = _parse(raw_config)
    with pytest.raises(errors.InvalidArgument, match="a1, a2, b1"):
        cfg.node_named("zz")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="does not exist"):
        config.load(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster\nname = ")
    with pytest.raises(errors.InvalidArgument, match="not valid TOML"):
        config.load(bad, env={})


def test_dump_parse_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(FULL_TOML)
    cfg = config.load(path, env={})
    again = config.parse(tomllib.loads(config.dump(cfg)), env={}, path=cfg.path)
    assert again == cfg


def test_dump_round_trips_defaults_and_awkward_strings(raw_config: dict[str, Any]) -> None:
    raw_config["cluster"].update(name='we"ird \\ name ünï', data_dir="C:\\data\\tri store")
    raw_config["node"].update(peer_down_s=1e-3, clock_offset_ms=-5)
    for cfg in (_parse({}), _parse(raw_config)):
        assert config.parse(tomllib.loads(config.dump(cfg)), env={}) == cfg


def test_witness_groups_must_have_an_odd_size() -> None:
    raw = {
        "nodes": [
            {
                "name": f"{a}1",
                "id": i + 1,
                "az": f"az-{a}",
                "grpc": f"h:{i}",
                "metrics": f"h:{100 + i}",
            }
            for i, a in enumerate("abc")
        ],
        "witnesses": [
            {"name": f"w{k}", "group": 0, "grpc": f"h:{200 + k}", "metrics": f"h:{300 + k}"}
            for k in range(2)
        ],
    }
    with pytest.raises(errors.InvalidArgument, match="odd number"):
        config.parse(raw, env={})
    raw["witnesses"].append({"name": "w9", "group": 0, "grpc": "h:299", "metrics": "h:399"})
    assert len(config.parse(raw, env={}).witness_groups[0]) == 3
