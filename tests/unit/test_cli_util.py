"""Pure helpers of the CLI: s3:// URLs, K=V options, the progress bar, the dev
launcher's planning, download file handling, the admin status table."""

from __future__ import annotations

import argparse
import io
import signal
from pathlib import Path

import pytest

from tristore.cli import dev, objects, processes, progress
from tristore.cli.admin import render_status
from tristore.cli.util import (
    S3Url,
    format_size,
    format_table,
    parse_bucket_url,
    parse_kv,
    parse_kv_list,
    parse_object_url,
    parse_s3_url,
)
from tristore.config import parse
from tristore.errors import IncompleteBody, InvalidArgument, InvalidBucketName, KeyTooLongError
from tristore.model import (
    ClusterStatus,
    NodeHealth,
    NodeStatus,
    ReplicatorHealth,
    ReplicatorStatus,
)

pytestmark = pytest.mark.unit


# --- s3:// URLs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bucket", "key"),
    [
        ("s3://photos", "photos", ""),
        ("s3://photos/", "photos", ""),
        ("s3://photos/a", "photos", "a"),
        ("s3://photos/2024/cat.jpg", "photos", "2024/cat.jpg"),
        ("s3://photos/dir/", "photos", "dir/"),
        ("s3://photos//double", "photos", "/double"),
    ],
)
def test_parse_s3_url(text: str, bucket: str, key: str) -> None:
    assert parse_s3_url(text) == S3Url(bucket, key)


@pytest.mark.parametrize("text", ["photos/a", "/tmp/x", "-", "S3://photos", "s3:/photos"])
def test_parse_s3_url_rejects_other_schemes(text: str) -> None:
    with pytest.raises(InvalidArgument, match="s3://BUCKET"):
        parse_s3_url(text)


def test_parse_s3_url_needs_a_bucket() -> None:
    with pytest.raises(InvalidArgument, match="names no bucket"):
        parse_s3_url("s3:///key")


@pytest.mark.parametrize("bucket", ["ab", "Photos", "my_bucket", "a..b", "192.168.1.1", "-ab"])
def test_parse_s3_url_validates_the_bucket(bucket: str) -> None:
    with pytest.raises(InvalidBucketName):
        parse_s3_url(f"s3://{bucket}/k")


def test_bucket_and_object_urls() -> None:
    assert parse_bucket_url("s3://photos/") == "photos"
    with pytest.raises(InvalidArgument, match="object URL"):
        parse_bucket_url("s3://photos/k")
    assert parse_object_url("s3://photos/k") == S3Url("photos", "k")
    with pytest.raises(InvalidArgument, match="no key"):
        parse_object_url("s3://photos/")
    with pytest.raises(KeyTooLongError):
        parse_object_url("s3://photos/" + "k" * 1025)


def test_s3url_str_round_trips() -> None:
    for text in ("s3://photos", "s3://photos/a/b"):
        assert str(parse_s3_url(text)) == text


# --- K=V ---------------------------------------------------------------------


def test_parse_kv() -> None:
    assert parse_kv("a=b") == ("a", "b")
    assert parse_kv("a=b=c") == ("a", "b=c")
    assert parse_kv("a=") == ("a", "")
    assert parse_kv(" a =x") == ("a", "x")
    for bad in ("a", "=b", " =b", ""):
        with pytest.raises(InvalidArgument, match="NAME=VALUE"):
            parse_kv(bad, "--meta")


def test_parse_kv_list() -> None:
    assert parse_kv_list(None, "--meta") == {}
    assert parse_kv_list(["a=1", "b=2"], "--meta") == {"a": "1", "b": "2"}
    with pytest.raises(InvalidArgument, match="twice"):
        parse_kv_list(["a=1", "a=2"], "--meta")


# --- formatting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2048 * 1024**4, "2048.0 TiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_format_table_aligns_columns() -> None:
    out = format_table(["A", "BB"], [["xxx", 1], ["y", None]])
    assert out.splitlines() == ["A    BB", "xxx  1", "y    None"]


# --- progress bar ------------------------------------------------------------


def test_render_counts_things_with_a_unit() -> None:
    line = progress.render(250, 1000, 5.0, width=8, unit="keys")
    assert line == "[##......]  25%  250 / 1000 keys  50 keys/s"
    assert progress.render(7, None, 0.0, unit="keys") == "7 keys  - keys/s"


def test_render_known_total() -> None:
    line = progress.render(512 * 1024**2, 1024**3, 2.0, width=10)
    assert line == "[#####.....]  50%  512.0 MiB / 1.0 GiB  256.0 MiB/s"


def test_render_unknown_total_and_zero_time() -> None:
    assert progress.render(2048, None, 1.0) == "2.0 KiB  2.0 KiB/s"
    assert progress.render(0, None, 0.0) == "0 B  -/s"
    assert progress.render(0, 0, 0.0) == "0 B  -/s"


def test_render_clamps_over_100_percent() -> None:
    assert progress.render(200, 100, 1.0, width=4).startswith("[####] 100%")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_waits_then_throttles() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = progress.Progress(1000, out, clock=clock, show_after_s=0.5, min_interval_s=0.1)
    bar(100)
    clock.now += 0.4
    bar(200)
    assert out.getvalue() == ""  # a short transfer shows nothing
    clock.now += 0.2
    bar(300)
    assert out.getvalue().count("\r") == 1
    for _ in range(5):  # five updates within 0.05 s: no redraw
        clock.now += 0.01
        bar.add(10)
    assert out.getvalue().count("\r") == 1
    clock.now += 0.1
    bar.add(10)
    assert out.getvalue().count("\r") == 2
    bar.close()
    assert out.getvalue().endswith("\n")
    assert " 36%" in out.getvalue().splitlines()[-1].split("\r")[-1]


def test_progress_close_is_silent_when_never_drawn() -> None:
    out = io.StringIO()
    bar = progress.Progress(10, out, clock=FakeClock())
    bar(10)
    bar.close()
    assert out.getvalue() == ""


def test_progress_on_non_tty_stderr_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress.for_stderr(10, enabled=True)
    bar._show_after = 0
    bar._interval = 0
    bar(5)
    bar.close()
    assert capsys.readouterr().err == ""


# --- dev launcher planning ---------------------------------------------------


def test_plan_default_layout(tmp_path: Path) -> None:
    cfg, layout = dev.plan(3, 2, 7100, tmp_path / "data")
    assert [n.name for n in cfg.nodes] == ["a1", "a2", "b1", "b2", "c1", "c2"]
    assert [n.id for n in cfg.nodes] == [1, 2, 3, 4, 5, 6]
    assert [n.az for n in cfg.nodes] == ["az-a", "az-a", "az-b", "az-b", "az-c", "az-c"]
    assert [n.grpc for n in cfg.nodes] == [f"127.0.0.1:{7100 + i}" for i in range(1, 7)]
    assert [n.metrics for n in cfg.nodes] == [f"127.0.0.1:{7200 + i}" for i in range(1, 7)]
    assert cfg.cluster.data_dir == str(tmp_path / "data")
    assert [(p.name, p.role, p.grpc) for p in layout.processes] == [
        (n.name, "node", n.grpc) for n in cfg.nodes
    ]
    assert layout.witnesses == 0


def test_plan_more_azs(tmp_path: Path) -> None:
    cfg, _ = dev.plan(5, 1, 20000, tmp_path)
    assert [n.name for n in cfg.nodes] == ["a1", "b1", "c1", "d1", "e1"]
    assert cfg.azs == ("az-a", "az-b", "az-c", "az-d", "az-e")


def test_plan_writes_a_config_tristore_config_reads(tmp_path: Path) -> None:
    import tomllib

    from tristore.config import dump

    cfg, _ = dev.plan(3, 2, 7100, tmp_path / "data")
    again = parse(tomllib.loads(dump(cfg)), env={})
    assert again.nodes == cfg.nodes
    assert again.cluster == cfg.cluster


@pytest.mark.parametrize(
    ("azs", "per_az", "base"), [(2, 2, 7100), (27, 1, 7100), (26, 4, 7100), (3, 2, 65430)]
)
def test_plan_rejects_impossible_layouts(tmp_path: Path, azs: int, per_az: int, base: int) -> None:
    with pytest.raises(InvalidArgument):
        dev.plan(azs, per_az, base, tmp_path)


def test_layout_json_round_trips(tmp_path: Path) -> None:
    _, layout = dev.plan(3, 2, 7100, tmp_path, witnesses=3)
    assert dev.Layout.from_json(layout.to_json()) == layout


def test_layout_proc_lists_valid_names(tmp_path: Path) -> None:
    _, layout = dev.plan(3, 1, 7100, tmp_path)
    assert layout.proc("b1", tmp_path).az == "az-b"
    with pytest.raises(Exception, match="valid names: a1, b1, c1"):
        layout.proc("zz", tmp_path)


@pytest.mark.parametrize(
    ("text", "sig"),
    [
        ("KILL", signal.SIGKILL),
        ("kill", signal.SIGKILL),
        ("SIGTERM", signal.SIGTERM),
        ("9", signal.SIGKILL),
        ("stop", signal.SIGSTOP),
    ],
)
def test_parse_signal(text: str, sig: signal.Signals) -> None:
    assert dev.parse_signal(text) == sig


@pytest.mark.parametrize("text", ["FOO", "", "999"])
def test_parse_signal_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        dev.parse_signal(text)


def test_is_ours_rejects_other_processes(tmp_path: Path) -> None:
    import os

    d = dev.DevDir(tmp_path)
    assert not dev.is_ours(os.getpid(), d, "a1")  # alive, but not a1 of this dir
    assert dev.running_pid(d, "a1") is None  # no pid file


# --- downloads ---------------------------------------------------------------


def test_local_target(tmp_path: Path) -> None:
    assert objects.local_target(str(tmp_path / "f"), "a/b.txt") == tmp_path / "f"
    assert objects.local_target(str(tmp_path), "a/b.txt") == tmp_path / "b.txt"
    new_dir = tmp_path / "new"
    assert objects.local_target(f"{new_dir}/", "a/b.txt") == new_dir / "b.txt"
    assert new_dir.is_dir()
    with pytest.raises(InvalidArgument, match="no file name"):
        objects.local_target(str(tmp_path), "dir/")
    with pytest.raises(InvalidArgument, match="does not exist"):
        objects.local_target(str(tmp_path / "missing" / "f"), "k")


def _no_bar() -> progress.Progress:
    return progress.for_stderr(None, enabled=False)


def test_write_atomically_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")
    n = objects.write_atomically(target, iter([b"ab", b"cd"]), _no_bar(), expect=4)
    assert n == 4
    assert target.read_bytes() == b"abcd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_atomically_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")

    def broken():
        yield b"ab"
        raise InvalidArgument("stream broke")

    with pytest.raises(InvalidArgument):
        objects.write_atomically(target, broken(), _no_bar())
    with pytest.raises(IncompleteBody):
        objects.write_atomically(target, iter([b"ab"]), _no_bar(), expect=10)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- admin status ------------------------------------------------------------


def test_render_status() -> None:
    up = NodeStatus(
        "a1",
        "az-a",
        "node",
        hints_pending=3,
        objects=10,
        disk_bytes=2048,
        uptime_seconds=90,
        epoch=7,
        tombstones=5,
    )
    draining = NodeStatus(
        "a2", "az-a", "node", objects=4, epoch=7, state="draining", handoffs_pending=4
    )
    full = NodeStatus("c1", "az-c", "node", epoch=7, disk_state="full", disk_free_bytes=1)
    status = ClusterStatus(
        "local",
        7,
        (
            NodeHealth("b1", "az-b", "127.0.0.1:7103", False, error="connection refused"),
            NodeHealth("a1", "az-a", "127.0.0.1:7101", True, status=up),
            NodeHealth("a2", "az-a", "127.0.0.1:7102", True, status=draining),
            NodeHealth("c1", "az-c", "127.0.0.1:7105", True, status=full),
        ),
    )
    out = render_status(status)
    lines = out.splitlines()
    assert lines[0] == "cluster local  epoch 7  nodes 3/4 up  hints pending 3"
    assert lines[1] == "AZs: az-a 2/2  az-b 0/1  az-c 1/1"
    assert lines[4].split() == [
        "az-a",
        "a1",
        "127.0.0.1:7101",
        "up",
        "7",
        "3",
        "-",
        "10",
        "5",
        "2.0",
        "KiB",
        "90s",
    ]
    assert lines[5].split()[3:7] == ["draining", "7", "0", "4"]
    assert "DOWN" in lines[6] and "connection refused" in lines[6]
    assert lines[7].split()[3:5] == ["up", "(disk"] and "full)" in lines[7]
    assert status.to_json()["nodes"][3]["status"]["disk_state"] == "full"  # type: ignore[index]


def test_render_status_shows_replicators_and_their_lag() -> None:
    st = ReplicatorStatus(
        "r1",
        uptime_seconds=30,
        dlq_entries=2,
        log_entries_behind=7,
        nodes_tailed=6,
        lag_seconds={"west/b": 0.25, "north/c": 4.0},
    )
    status = ClusterStatus(
        "east",
        3,
        replicators=(
            ReplicatorHealth("r2", "127.0.0.1:7111", False, error="UNAVAILABLE: refused"),
            ReplicatorHealth("r1", "127.0.0.1:7110", True, status=st),
        ),
    )
    assert status.replication_lag == {"west/b": 0.25, "north/c": 4.0}
    out = render_status(status)
    assert out.splitlines()[0].endswith("replication lag 4.0s (north/c)")
    rows = out.splitlines()[-2:]
    assert rows[0].split() == [
        "r1", "127.0.0.1:7110", "up", "2", "7", "north/c", "4.0s,", "west/b", "250ms", "30s"
    ]  # fmt: skip
    assert rows[1].split()[:3] == ["r2", "127.0.0.1:7111", "DOWN"] and "refused" in rows[1]
    assert status.to_json()["replication_lag_seconds"] == {"west/b": 0.25, "north/c": 4.0}


def test_owns_port_tells_our_listener_from_a_strangers() -> None:
    import os
    import socket

    if not os.access("/proc/1/fd", os.R_OK):
        pytest.skip("needs /proc (Linux) and permission to read pid 1's fds")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        assert processes.owns_port(os.getpid(), addr)
        assert not processes.owns_port(1, addr)  # pid 1 is alive but is not listening there
