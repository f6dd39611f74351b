"""The ``tristore`` command and its ``dev`` launcher, run as real processes.

Every test runs ``python -m tristore ...`` in a subprocess, the way users do. The
launcher tests start real storage nodes on loopback ports picked at random
from a free range, and always ``dev down`` what they started.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, free_base_port, start_cluster
from tristore.cli import dev
from tristore.config import dump, load

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STATUS_KEYS = {"name", "role", "cluster", "az", "pid", "grpc", "metrics", "up"}
NODE_BUILT = importlib.util.find_spec("node.server") is not None
REPLICATOR_BUILT = importlib.util.find_spec("replicator.server") is not None
#: Replicators `dev up` starts per cluster by default (with witnesses).
DEFAULT_REPLICATORS = dev.DEFAULT_REPLICATORS if REPLICATOR_BUILT else 0


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH", "")) if p)
    e.pop("TRISTORE_ENDPOINT", None)
    e.pop("TRISTORE_DEV_DIR", None)
    return e


def cli(
    *args: str, timeout: float = 60, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        input=None if stdin is None else stdin.decode(),
        cwd=ROOT,
    )


def assert_error(r: subprocess.CompletedProcess[str], code: str, *fragments: str) -> None:
    """Exit 1 with exactly one ``Code: message`` line on stderr and no traceback."""
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{code}: "), r.stderr
    for f in fragments:
        assert f in lines[0], r.stderr


def write_stopped_dir(
    root: Path, base_port: int = 7100, clusters: int = 1, replicators: int = 0
) -> dev.DevDir:
    """A dev dir as `dev up` leaves it after `dev down`: config and state, no pids."""
    d = dev.DevDir(root)
    cfgs, layout = dev.plan_dir(d, clusters, 3, 2, base_port, replicators=replicators)
    for path, cfg in cfgs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(cfg))
    d.state.write_text(json.dumps(layout.to_json()))
    return d


# --- usage and argument errors ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["cp", "only-one"],
        ["dev"],
        ["dev", "up", "--azs", "2"],
        ["dev", "up", "--clusters", "3"],
        ["dev", "kill"],
        ["dev", "kill", "a1", "--signal", "FOO"],
        ["ls", "s3://bucket", "--max-keys", "many"],
        ["serve", "gateway", "--config", "x.toml", "--name", "a1"],
        ["serve", "node", "--name", "a1"],
        ["admin"],
        ["version", "disable", "s3://bucket"],
        ["version", "enable"],
        ["tag"],
        ["acl", "s3://bucket/k", "private", "extra"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    # One line, as every error (docs/commands.md "Exit status"), but exit 2: usage.
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("InvalidArgument: "), r.stderr
    assert "usage:" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["dev"],
        ["dev", "up"],
        ["dev", "status"],
        ["dev", "kill"],
        ["dev", "start"],
        ["dev", "restart"],
        ["dev", "down"],
        ["mb"],
        ["rb"],
        ["cp"],
        ["cat"],
        ["rm"],
        ["stat"],
        ["ls"],
        ["version"],
        ["tag"],
        ["acl"],
        ["admin"],
        ["admin", "status"],
        ["serve"],
    ],
)
def test_help_everywhere(args: list[str]) -> None:
    r = cli(*args, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: tristore")


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("tristore ")


# --- object commands that fail before reaching a cluster ----------------------


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["mb", "s3://Bad_Bucket"], "InvalidBucketName", "Bad_Bucket"),
        (["mb", "s3://bucket/key"], "InvalidArgument", "object URL"),
        (["mb", "bucket"], "InvalidArgument", "s3://BUCKET"),
        (["rb", "s3://ab"], "InvalidBucketName", "3 to 63"),
        (["cat", "s3://bucket"], "InvalidArgument", "no key"),
        (["rm", "s3://bucket/"], "InvalidArgument", "no key"),
        (["stat", "s3://bucket"], "InvalidArgument", "no key"),
        (["ls", "photos"], "InvalidArgument", "s3://BUCKET"),
        (["cp", "a", "b"], "InvalidArgument", "one of SRC and DST"),
        (["cp", "s3://bucket/k", "x", "--tag", "team=x"], "InvalidArgument", "only when DST"),
        (["cp", "a", "s3://bucket/k", "--tag", "novalue"], "InvalidArgument", "NAME=VALUE"),
        (
            ["cp", "a", "s3://bucket/k", "--meta", "a=1", "--meta", "a=2"],
            "InvalidArgument",
            "twice",
        ),
        (
            ["cp", "s3://bucket/a", "s3://bucket/b", "--if-none-match", "*"],
            "InvalidArgument",
            "only for uploads",
        ),
        (["cp", "a", "s3://bucket/k", "--version-id", "null"], "InvalidArgument", "downloads"),
        (["version", "enable", "s3://bucket/k"], "InvalidArgument", "object URL"),
        (["tag", "s3://bucket/k", "a=1", "--delete"], "InvalidArgument", "not both"),
        (["acl", "s3://bucket"], "InvalidArgument", "no key"),
        (["ls", "s3://bucket", "--key-marker", "k"], "InvalidArgument", "only with --versions"),
        (["cp", "-", "s3://bucket/"], "InvalidArgument", "stdin needs a full key"),
        (["cp", "s3://bucket/k", "x", "--meta", "a=1"], "InvalidArgument", "only when DST"),
    ],
)
def test_object_command_errors(args: list[str], code: str, fragment: str) -> None:
    assert_error(cli(*args), code, fragment)


def test_cp_upload_of_a_directory_is_refused(tmp_path: Path) -> None:
    assert_error(cli("cp", str(tmp_path), "s3://bucket/k"), "InvalidArgument", "is a directory")


# --- serve ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "listed"),
    [("node", "nodes: a1, a2"), ("witness", "witnesses: none"), ("replicator", "r1, r2")],
)
def test_serve_checks_the_name_before_starting(tmp_path: Path, role: str, listed: str) -> None:
    d = write_stopped_dir(tmp_path / "dev", replicators=2)
    r = cli("serve", role, "--config", str(d.config), "--name", "zz")
    assert_error(r, "InvalidArgument", f"no {role} named 'zz'", listed)


def test_serve_bad_config_and_name(tmp_path: Path) -> None:
    assert_error(
        cli("serve", "node", "--config", str(tmp_path / "no.toml"), "--name", "a1"),
        "InvalidArgument",
        "does not exist",
    )
    d = write_stopped_dir(tmp_path / "dev")
    assert_error(
        cli("serve", "node", "--config", str(d.config), "--name", "zz"),
        "InvalidArgument",
        "no node named 'zz'",
    )


# --- dev launcher without processes -------------------------------------------


def test_dev_status_json_on_a_stopped_dir(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev", base_port=free_base_port())
    r = cli("dev", "status", "--dir", str(d.root), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == ["a1", "a2", "b1", "b2", "c1", "c2"]
    for row in rows:
        assert set(row) == STATUS_KEYS
        assert row["pid"] is None and row["up"] is False
        assert row["role"] == "node" and row["cluster"] == "local"
    assert rows[2]["az"] == "az-b"


def test_dev_status_text_on_a_stopped_dir(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev")
    r = cli("dev", "status", "--dir", str(d.root))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CLUSTER", "AZ", "PID", "GRPC", "METRICS", "UP"]
    assert len(lines) == 7 and all(line.endswith("DOWN") for line in lines[1:])


def test_dev_dir_from_environment(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev")
    e = env() | {"TRISTORE_DEV_DIR": str(d.root)}
    r = subprocess.run(
        [sys.executable, "-m", "tristore", "dev", "status", "--json"],
        capture_output=True,
        text=True,
        env=e,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 6


def test_dev_commands_without_a_cluster(tmp_path: Path) -> None:
    missing = str(tmp_path / "none")
    assert_error(cli("dev", "status", "--dir", missing), "NoDevCluster", "dev up --dir")
    assert_error(cli("dev", "kill", "a1", "--dir", missing), "NoDevCluster")
    r = cli("dev", "down", "--dir", missing)
    assert r.returncode == 0 and "nothing to stop" in r.stderr


def test_dev_unknown_name_lists_valid_names(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev")
    for action in ("kill", "start", "restart"):
        assert_error(
            cli("dev", action, "zz", "--dir", str(d.root)),
            "NoSuchProcess",
            "valid names: a1, a2, b1, b2, c1, c2",
        )


def test_dev_kill_of_a_stopped_process_is_a_no_op(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev")
    r = cli("dev", "kill", "a1", "--dir", str(d.root))
    assert r.returncode == 0 and "not running" in r.stderr


def test_dev_status_of_a_stopped_two_cluster_dir(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev", clusters=2, replicators=2)
    r = cli("dev", "status", "--dir", str(d.root), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    local = ["a1", "a2", "b1", "b2", "c1", "c2", "r1", "r2"]
    assert [row["name"] for row in rows] == [f"{c}/{n}" for c in ("east", "west") for n in local]
    assert [row["cluster"] for row in rows] == ["east"] * 8 + ["west"] * 8
    assert {row["role"] for row in rows} == {"node", "replicator"}
    assert all(row["az"] is None for row in rows if row["role"] == "replicator")
    text = cli("dev", "status", "--dir", str(d.root)).stdout.splitlines()
    assert text[0].split()[:3] == ["NAME", "ROLE", "CLUSTER"]
    assert text[-1].split()[:4] == ["west/r2", "replicator", "west", "-"]


def test_dev_names_in_a_two_cluster_dir(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev", clusters=2)
    root = str(d.root)
    assert_error(cli("dev", "kill", "a1", "--dir", root), "NoSuchProcess", "east/a1, west/a1")
    assert_error(cli("dev", "start", "zz", "--dir", root), "NoSuchProcess", "west/c2")
    r = cli("dev", "kill", "west/a1", "--dir", root)
    assert r.returncode == 0 and "west/a1 is not running" in r.stderr
    assert_error(
        cli("dev", "up", "--dir", root, "--clusters", "1"), "InvalidArgument", "--clusters 2"
    )
    r = cli("dev", "down", "--dir", root)
    assert r.returncode == 0, r.stderr
    assert f"data kept in {d.root / 'east' / 'data'}, {d.root / 'west' / 'data'}" in r.stdout


def test_dev_up_names_the_busy_port_and_writes_nothing(tmp_path: Path) -> None:
    base = free_base_port()
    busy = base + 103  # metrics of b1
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", busy))
        s.listen()
        r = cli("dev", "up", "--dir", str(tmp_path / "dev"), "--base-port", str(base))
    assert_error(r, "PortInUse", f"port {busy} (metrics of b1)", "--base-port")
    assert not (tmp_path / "dev" / "launcher.json").exists()


def test_dev_up_refuses_a_different_layout_in_an_existing_dir(tmp_path: Path) -> None:
    d = write_stopped_dir(tmp_path / "dev", base_port=7100)
    assert_error(
        cli("dev", "up", "--dir", str(d.root), "--base-port", "7300"),
        "InvalidArgument",
        "--base-port 7100",
        "another --dir",
    )


@pytest.mark.timeout(60)
def test_dev_up_reports_processes_that_die(tmp_path: Path) -> None:
    """A process that exits at start-up fails `dev up` at once, with its log."""
    root = tmp_path / "dev"
    root.mkdir()
    (root / "cluster.toml").write_text("[cluster]\nbogus = 1\n")  # every node rejects it
    r = cli("dev", "up", "--dir", str(root), "--base-port", str(free_base_port()))
    try:
        assert r.returncode == 1, (r.stdout, r.stderr)
        # Its status is in its log (no one waits for a process the launcher forked).
        assert "--- a1: exited; last lines of" in r.stderr
        assert "tristore dev: a1 exited with status 1" in r.stderr
        assert "unknown keys ['bogus']" in r.stderr  # the tail of the log
        state = json.loads((root / "launcher.json").read_text())
        names = ", ".join(sorted(p["name"] for p in state["processes"]))
        assert names.startswith("a1, a2, b1, b2, c1, c2, ") and "w1, w2, w3" in names
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith(f"StartFailed: {names} did not come up")
        assert (root / "launcher.json").exists()
        assert (root / "logs" / "a1.log").exists()
    finally:
        cli("dev", "down", "--dir", str(root))


# --- a real cluster -----------------------------------------------------------


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A dev dir and free base port; whatever the test starts there is stopped after."""
    if not NODE_BUILT:
        pytest.skip("node/server.py is not built yet")
    root, base = tmp_path / "dev", free_base_port()
    try:
        yield root, base
    finally:
        r = cli("dev", "down", "--dir", str(root))
        assert r.returncode == 0, r.stderr


def status(root: Path) -> dict[str, dict[str, object]]:
    r = cli("dev", "status", "--dir", str(root), "--json")
    assert r.returncode == 0, r.stderr
    return {row["name"]: row for row in json.loads(r.stdout)}


@pytest.mark.timeout(180)
def test_dev_cycle(dev_dir: tuple[Path, int]) -> None:
    root, base = dev_dir
    r = cli("dev", "up", "--dir", str(root), "--base-port", str(base), "--witnesses", "3")
    assert r.returncode == 0, (r.stdout, r.stderr)
    endpoints = ",".join(f"127.0.0.1:{base + i}" for i in range(1, 7))
    assert f"export TRISTORE_ENDPOINT={endpoints}" in r.stdout.splitlines()
    state = json.loads((root / "launcher.json").read_text())
    reps = DEFAULT_REPLICATORS
    assert state["witnesses"] == 3 and state["replicators"] == reps
    roles = [p["role"] for p in state["processes"]]
    assert roles == ["node"] * 6 + ["witness"] * 3 + ["replicator"] * reps
    assert (root / "cluster.toml").exists()
    for name in ("a1", "c2"):
        assert (root / "run" / f"{name}.pid").exists()
        assert (root / "logs" / f"{name}.log").exists()

    rows = status(root)
    assert all(row["up"] for row in rows.values()), rows
    for name, row in rows.items():
        # Forked by the launcher (tristore/cli/launch.py), each process leads
        # its own session and shows the command it runs.
        pid = int(row["pid"])
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        config = str(root / "cluster.toml")
        assert argv[2:] == ["tristore", "serve", row["role"], "--config", config, "--name", name]
        assert os.getsid(pid) == pid
    assert rows["b1"]["grpc"] == f"127.0.0.1:{base + 3}"
    assert rows["b1"]["metrics"] == f"127.0.0.1:{base + 103}"

    again = cli("dev", "up", "--dir", str(root))
    assert again.returncode == 0 and "already running" in again.stdout

    old_pid = rows["a1"]["pid"]
    r = cli("dev", "kill", "a1", "--dir", str(root), "--signal", "KILL")
    assert r.returncode == 0, r.stderr
    rows = status(root)
    assert rows["a1"]["up"] is False and rows["a1"]["pid"] is None
    assert rows["a2"]["up"] is True

    r = cli("dev", "start", "a1", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    rows = status(root)
    assert rows["a1"]["up"] is True and rows["a1"]["pid"] != old_pid

    b1 = rows["b1"]["pid"]
    r = cli("dev", "restart", "b1", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    rows = status(root)
    assert rows["b1"]["up"] is True and rows["b1"]["pid"] != b1

    # `dev up` on a partly running cluster starts just what is missing.
    assert cli("dev", "kill", "c2", "--dir", str(root)).returncode == 0
    r = cli("dev", "up", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    assert all(row["up"] for row in status(root).values())

    r = cli("dev", "down", "--dir", str(root))
    assert r.returncode == 0, r.stderr
    assert f"stopped {9 + reps} processes" in r.stdout
    rows = status(root)
    assert not any(row["up"] or row["pid"] for row in rows.values())
    assert not list((root / "run").glob("*.pid"))
    assert (root / "data" / "a1").is_dir()  # data is kept


@pytest.mark.timeout(180)
def test_dev_two_clusters(tmp_path: Path) -> None:
    """`dev up --clusters 2`: east and west, each a whole cluster with its own
    map, ports and data, naming the other as a remote; one dir for both."""
    if not NODE_BUILT:
        pytest.skip("node/server.py is not built yet")
    east = start_cluster(tmp_path, "--clusters", "2")
    try:
        assert set(east.clusters) == {"east", "west"}
        west = east.clusters["west"]
        cfg_e, cfg_w = east.config, west.config
        assert (cfg_e.cluster.name, cfg_e.cluster.id) == ("east", 1)
        assert (cfg_w.cluster.name, cfg_w.cluster.id) == ("west", 2)
        assert [r.name for r in cfg_e.remotes] == ["west"]
        assert cfg_e.remotes[0].endpoint_list == west.endpoint.split(",")
        assert cfg_w.remotes[0].endpoint_list == east.endpoint.split(",")
        assert cfg_w.nodes[0].grpc == f"127.0.0.1:{east.base_port + 201}"
        assert len(cfg_e.replicators) == len(cfg_w.replicators) == DEFAULT_REPLICATORS
        assert cfg_w.data_dir_for("a1") == east.dir / "west" / "data" / "a1"

        # Each answers on its own, and they are two clusters, not one.
        for c in (east, west):
            with c.client() as client:
                client.create_bucket(f"only-{c.name}")
        for c, other in ((east, west), (west, east)):
            with c.client() as client:
                names = {b.name for b in client.list_buckets()}
            assert f"only-{c.name}" in names and f"only-{other.name}" not in names

        rows = east.status()
        local = [s.name for s in (*cfg_e.nodes, *cfg_e.witnesses, *cfg_e.replicators)]
        expected = [f"{c}/{n}" for c in ("east", "west") for n in local]
        assert [r["name"] for r in rows] == expected
        assert all(r["up"] and str(r["name"]).startswith(f"{r['cluster']}/") for r in rows)

        west.kill("a1")
        assert west.up_names() == {"a2", "b1", "b2", "c1", "c2"}
        assert east.up_names() == {n.name for n in cfg_e.nodes}
        with west.client() as client:
            client.put_object("only-west", "while-a1-down", b"x")
        west.start("a1")
        assert west.up_names() == {n.name for n in cfg_w.nodes}
    finally:
        east.down()
    rows = east.status()
    assert not any(r["up"] or r["pid"] for r in rows)
    assert not list(east.dir.glob("*/run/*.pid"))
    assert (east.dir / "west" / "data" / "a1").is_dir()
    assert load(east.dir / "east" / "cluster.toml").cluster.name == "east"


# --- object and admin commands against a running cluster ----------------------


def one_error_line(r: subprocess.CompletedProcess[bytes], code: str) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{code}: "), r.stderr
    return lines[0]


@pytest.mark.timeout(120)
def test_object_commands(cluster: DevCluster, tmp_path: Path) -> None:
    b = "cli-objects"
    cluster.cli("mb", f"s3://{b}")
    one_error_line(cluster.cli("mb", f"s3://{b}", check=False), "BucketAlreadyOwnedByYou")
    assert f" {b}" in cluster.cli("ls").stdout.decode()

    src = tmp_path / "page.html"
    body = os.urandom(300_000)
    src.write_bytes(body)
    out = cluster.cli("cp", str(src), f"s3://{b}/site/", "--meta", "owner=ops").stdout.decode()
    assert out.startswith(f"upload: {src} to s3://{b}/site/page.html")
    info = json.loads(cluster.cli("stat", f"s3://{b}/site/page.html", "--json").stdout)
    assert info["size"] == len(body) and info["content_type"] == "text/html"
    assert info["metadata"] == {"owner": "ops"}
    text = cluster.cli("stat", f"s3://{b}/site/page.html").stdout.decode()
    assert f"etag:               {info['etag']}" in text.splitlines()

    cluster.cli("cp", "-", f"s3://{b}/in.bin", "--content-type", "x/y", input=b"from stdin")
    assert cluster.cli("cat", f"s3://{b}/in.bin").stdout == b"from stdin"
    assert cluster.cli("cat", f"s3://{b}/in.bin", "--range", "bytes=5-").stdout == b"stdin"
    assert cluster.cli("cp", f"s3://{b}/site/page.html", "-").stdout == body

    dest = tmp_path / "down"
    cluster.cli("cp", f"s3://{b}/site/page.html", f"{dest}/")
    assert (dest / "page.html").read_bytes() == body
    assert [p.name for p in dest.iterdir()] == ["page.html"]  # no temporary file left
    one_error_line(cluster.cli("cp", f"s3://{b}/nope", f"{dest}/", check=False), "NoSuchKey")
    assert [p.name for p in dest.iterdir()] == ["page.html"]

    listing = json.loads(cluster.cli("ls", f"s3://{b}", "--recursive", "--json").stdout)
    assert [e["key"] for e in listing["contents"]] == ["in.bin", "site/page.html"]
    assert set(listing["contents"][0]) == {"key", "size", "etag", "last_modified"}
    assert listing["is_truncated"] is False and listing["next_continuation_token"] is None
    lines = cluster.cli("ls", f"s3://{b}", "--delimiter", "/").stdout.decode().splitlines()
    assert lines[0].split() == ["PRE", "site/"] and lines[1].endswith(" 10 in.bin")
    one = ("--max-keys", "1", "--json", "--recursive")
    page = json.loads(cluster.cli("ls", f"s3://{b}", *one).stdout)
    assert len(page["contents"]) == 1 and page["is_truncated"] is True
    rest = cluster.cli(
        "ls",
        f"s3://{b}",
        "--recursive",
        "--max-keys",
        "5",
        "--json",
        "--continuation-token",
        page["next_continuation_token"],
    )
    assert [e["key"] for e in json.loads(rest.stdout)["contents"]] == ["site/page.html"]
    # Not recursive: the first '/' level, deeper keys as PRE lines (as aws s3 ls).
    assert cluster.cli("ls", f"s3://{b}").stdout.decode().split() == [
        "PRE",
        "site/",
        *lines[1].split(),
    ]
    assert cluster.cli("ls", f"s3://{b}/site").stdout.decode().split() == ["PRE", "site/"]
    assert cluster.cli("ls", f"s3://{b}/site/").stdout.decode().endswith(" site/page.html\n")

    one_error_line(cluster.cli("rb", f"s3://{b}", check=False), "BucketNotEmpty")
    cluster.cli("rm", f"s3://{b}/in.bin")
    cluster.cli("rm", f"s3://{b}/site/page.html")
    one_error_line(cluster.cli("cat", f"s3://{b}/in.bin", check=False), "NoSuchKey")
    cluster.cli("rb", f"s3://{b}")
    one_error_line(cluster.cli("ls", f"s3://{b}", check=False), "NoSuchBucket")


@pytest.mark.timeout(60)
def test_admin_status(cluster: DevCluster) -> None:
    status = json.loads(cluster.cli("admin", "status", "--json").stdout)
    assert status["cluster"] == "local"
    assert sorted(n["name"] for n in status["nodes"]) == ["a1", "a2", "b1", "b2", "c1", "c2"]
    assert all(n["up"] for n in status["nodes"])
    text = cluster.cli("admin", "status").stdout.decode()
    assert "nodes 6/6 up" in text and "az-a 2/2  az-b 2/2  az-c 2/2" in text


def test_no_endpoint_is_a_clear_error() -> None:
    r = cli("ls")
    assert r.returncode == 1
    assert r.stderr.startswith("InvalidArgument: ") and "TRISTORE_ENDPOINT" in r.stderr
