"""The dev launcher (tristore/cli/launch.py): what makes forking its processes
safe, the command line each one shows, and a role that cannot start."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tristore.cli import launch, processes

pytestmark = pytest.mark.unit


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=processes.child_env(),
        timeout=60,
    )


def _launch(tmp_path: Path, role: str, name: str) -> launch.Launch:
    return launch.Launch(
        role, tmp_path / "c.toml", name, tmp_path / f"{name}.log", tmp_path / f"{name}.pid"
    )


def test_importing_every_role_starts_no_thread() -> None:
    # The launcher forks after these imports: a thread alive then (gRPC's,
    # RocksDB's, an executor's) would be missing in every process, holding
    # whatever lock it held. What each role imports must only define things.
    r = _python(
        "import os, tristore.cli.main, tristore.server, node.server, witness.server, "
        "replicator.server; print(len(os.listdir('/proc/self/task')))"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_a_process_shows_the_command_it_runs() -> None:
    code = (
        "import sys; from tristore.cli import launch\n"
        "ok = launch.set_command_line(['py', '-m', 'tristore', 'serve', 'node'])\n"
        "print(ok, sys.orig_argv, sys.argv)\n"
        "print(open('/proc/self/cmdline', 'rb').read())\n"
    )
    r = _python(code, "a long argument the new command line fits in", "another one")
    assert r.returncode == 0, r.stderr
    said, cmdline = r.stdout.splitlines()
    assert said == ("True ['py', '-m', 'tristore', 'serve', 'node'] ['tristore', 'serve', 'node']")
    # Exactly those arguments, the rest of the old ones' memory cleared.
    assert eval(cmdline).rstrip(b"\0") == b"py\0-m\0tristore\0serve\0node"


def test_a_command_line_longer_than_the_old_one_is_left_alone() -> None:
    code = (
        "import sys; from tristore.cli import launch\n"
        "print(launch.set_command_line(['x' * 10_000]), sys.orig_argv == ['x' * 10_000])\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_the_launcher_command_round_trips(tmp_path: Path) -> None:
    xs = [_launch(tmp_path, "node", "a1"), _launch(tmp_path, "witness", "w1")]
    argv = launch.command(xs)
    assert argv[:3] == [sys.executable, "-m", "tristore.cli.launch"]
    assert launch.parse(argv[3:]) == xs
    with pytest.raises(SystemExit, match="usage"):
        launch.parse(argv[3:-1])


def test_a_role_that_cannot_be_imported_says_so_in_its_logs(tmp_path: Path) -> None:
    xs = [_launch(tmp_path, "nosuch", n) for n in ("x1", "x2")]
    r = subprocess.run(
        launch.command(xs), capture_output=True, text=True, env=processes.child_env(), timeout=60
    )
    assert r.returncode == 1
    for x in xs:
        assert not x.pid_file.exists()
        log = x.log.read_text()
        assert "could not start nosuch processes" in log and "Traceback" in log, log


def test_a_launched_process_is_not_a_child_but_is_seen_to_exit(tmp_path: Path) -> None:
    # dev up's health wait polls processes the launcher forked, which are not
    # its children: one that exits is seen to, without a status to report.
    # (It lets go of the output pipe, or the run would wait for it to end.)
    code = "import os, time\nif (pid := os.fork()) == 0:\n    os.closerange(0, 3)\n"
    code += "    time.sleep(3)\n    os._exit(0)\nprint(pid)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    child = processes.Child(int(r.stdout))
    assert child.poll() is None  # alive, though not ours to wait for
    deadline = time.monotonic() + 30
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() == -1
