"""Start many server processes from one interpreter: how ``tristore dev`` starts
its nodes, witnesses and replicators.

Most of a server process's start is importing its role's modules: about half a
second of CPU for a node (gRPC, protobuf, aiohttp, awscrt and the node's own
tree), and a dev cluster starts up to fifteen processes. So ``dev`` runs this
launcher once for all the processes it starts:

    python -m tristore.cli.launch ROLE CONFIG NAME LOG PIDFILE [ROLE CONFIG ...]

For each role it forks a process that imports that role once (so a witness
carries only what a witness imports) and forks each of the role's processes
from it. Each of those is what ``tristore serve ROLE --config CONFIG --name
NAME`` would be: its own session, stdin from /dev/null, stdout and stderr
appended to LOG, its pid in PIDFILE, and its command line (``/proc/PID/cmdline``,
what ``ps`` and ``dev``'s pid checks read) rewritten to exactly that command.
The launcher exits once every process is started; they outlive it, as the
processes ``dev`` used to start one by one did.

Forking is safe because nothing before the fork starts a thread or touches
gRPC, RocksDB or an event loop: importing a role only defines things (one
thread after importing every role; ``tests/unit/test_launch.py``). Each
process then builds all of that itself, as a freshly started one does.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tristore.cli import processes

#: Fields of one process on the launcher's command line.
FIELDS = 5
USAGE = "usage: python -m tristore.cli.launch ROLE CONFIG NAME LOG PIDFILE [ROLE CONFIG ...]"


@dataclass(frozen=True)
class Launch:
    role: str
    config: Path
    name: str
    log: Path
    pid_file: Path

    def serve_argv(self) -> list[str]:
        """The command line the process shows: the ``serve`` command it runs."""
        argv = [sys.executable, "-m", "tristore", "serve", self.role]
        return [*argv, "--config", str(self.config), "--name", self.name]


def command(launches: list[Launch]) -> list[str]:
    """The launcher's command line for ``launches``."""
    argv = [sys.executable, "-m", "tristore.cli.launch"]
    for x in launches:
        argv += [x.role, str(x.config), x.name, str(x.log), str(x.pid_file)]
    return argv


def parse(args: list[str]) -> list[Launch]:
    if not args or len(args) % FIELDS:
        raise SystemExit(USAGE)
    return [
        Launch(role, Path(config), name, Path(log), Path(pid_file))
        for role, config, name, log, pid_file in zip(*[iter(args)] * FIELDS, strict=True)
    ]


def set_command_line(argv: list[str]) -> bool:
    """Rewrite this process's ``/proc/self/cmdline`` to ``argv``, in the memory
    the kernel reads it from (the argument strings the process was started
    with); False where that cannot be done (not Linux, or it does not fit).
    ``sys.argv`` and ``sys.orig_argv`` follow, so a restart in place
    (:func:`tristore.server.reexec`) runs that command."""
    raw = b"".join(a.encode() + b"\0" for a in argv)
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        # arg_start and arg_end: fields 48 and 49 of proc(5), counted from 1,
        # of which the split kept those from the third (the state) on.
        start, end = int(fields[45]), int(fields[46])
    except (OSError, IndexError, ValueError):
        return False
    if not start or len(raw) > end - start:
        return False
    ctypes.memmove(start, raw.ljust(end - start, b"\0"), end - start)
    sys.argv = argv[2:]
    sys.orig_argv = argv
    return True


def _banner(x: Launch) -> bytes:
    return f"--- tristore dev: starting {x.name} at {time.ctime()} ---\n".encode()


def _start(x: Launch) -> int:
    """Fork the process of ``x``: 0 in it (stdio and session already its
    own), its pid here."""
    x.log.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(x.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(log_fd, _banner(x))
        pid = os.fork()
        if pid == 0:
            os.setsid()
            null_fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null_fd, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(null_fd)
            set_command_line(x.serve_argv())
            return 0
    finally:
        os.close(log_fd)
    return pid


def _role_parent(role: str, launches: list[Launch]) -> Launch | None:
    """In the role's own process: import it, then fork its processes. Returns
    the launch to serve in each of those; never returns in the role's process."""
    try:
        from tristore.cli.serve import find_role

        find_role(role)
        # What the import made is never collected again in the processes, so
        # their collector does not touch (and copy) those shared pages.
        gc.collect()
        gc.freeze()
        for x in launches:
            pid = _start(x)
            if pid == 0:
                return x
            processes.write_atomic(x.pid_file, f"{pid}\n")
    except BaseException:  # noqa: BLE001  (whatever it is, it goes to the logs)
        # The processes that did not start show why in their logs.
        why = f"--- tristore dev: could not start {role} processes:\n{traceback.format_exc()}"
        for x in launches:
            with contextlib.suppress(OSError), x.log.open("a") as f:
                f.write(why)
        os._exit(1)
    os._exit(0)


def launch(launches: list[Launch]) -> Launch | None:
    """Start every process of ``launches``; in the launcher, None once they all
    run, their pids in their pid files; in each started process, its launch."""
    # What every role imports (gRPC, uvloop, protobuf, prometheus_client; the
    # command line each process runs its command with), imported once here.
    import tristore.cli.main
    import tristore.server  # noqa: F401

    roles: dict[str, list[Launch]] = {}
    for x in launches:
        roles.setdefault(x.role, []).append(x)
    parents = []
    for role, group in roles.items():
        pid = os.fork()
        if pid == 0:
            return _role_parent(role, group)
        parents.append(pid)
    ok = True
    for pid in parents:
        _, status = os.waitpid(pid, 0)
        ok &= os.waitstatus_to_exitcode(status) == 0
    if not ok:
        raise SystemExit(1)
    return None


def main() -> int:
    launches = parse(sys.argv[1:])
    x = launch(launches)
    if x is None:
        return 0
    from tristore.cli.main import run

    code = 1
    try:
        code = run(x.serve_argv()[3:])
    finally:
        # Its status, which no parent waits for, is in its log instead.
        print(f"--- tristore dev: {x.name} exited with status {code} at {time.ctime()} ---")
    return code


if __name__ == "__main__":
    sys.exit(main())
