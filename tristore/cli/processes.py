"""Process plumbing for the dev launcher: spawn detached, signal, probe ports.

Linux gives the precise answers (from ``/proc``); elsewhere the checks fall
back to "the pid is alive".
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: The repository root, so processes find the packages even when run from a checkout.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or LOOPBACK, int(port)


# --- what a pid is --------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def running(pid: int) -> bool:
    """Alive and not a zombie (where /proc cannot tell: alive)."""
    return alive(pid) and _task_state(pid, pid) not in ("Z", "X")


def argv_of(pid: int) -> list[str] | None:
    """The process's argv, [] for a zombie or a gone process, None when /proc
    cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return [] if Path("/proc/self").exists() else None
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _task_state(pid: int, tid: int) -> str | None:
    """The state letter of one thread (R, S, D, Z, ...); None when it is gone
    or /proc cannot tell."""
    try:
        return Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def exiting(pid: int) -> bool:
    """Whether ``pid``'s main thread has exited (a zombie) while another of its
    threads has not yet. A killed process's thread blocked in the kernel (one
    in fdatasync waits for the disk) outlives the main one, and until it is
    gone so are not the process's files: its listening sockets still hold
    their ports. False where /proc cannot tell."""
    if _task_state(pid, pid) != "Z":
        return False
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        return False
    return any(_task_state(pid, t) not in (None, "Z", "X") for t in tids if t != pid)


def send(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        if sig == signal.SIGTERM:
            # A paused (SIGSTOP) process would hold TERM until continued.
            os.kill(pid, signal.SIGCONT)


# --- ports ------------------------------------------------------------------------


def port_free(addr: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # The servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(_split(addr))
        except OSError:
            return False
    return True


def healthy(metrics_addr: str, timeout_s: float = 1.0) -> bool:
    """Does ``GET /healthz`` on ``metrics_addr`` answer 200?"""
    host, port = _split(metrics_addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def metric_sum(metrics_addr: str, metric: str, timeout_s: float = 1.0) -> float | None:
    """Sum of one metric's samples on ``/metrics``; None if it cannot be read."""
    host, port = _split(metrics_addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        text = resp.read().decode()
    except (OSError, http.client.HTTPException, UnicodeDecodeError):
        return None
    finally:
        conn.close()
    total = 0.0
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name == metric:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on ``port`` (IPv4 and IPv6); None without /proc."""
    found: set[str] = set()
    seen_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        seen_table = True
        for line in lines:
            f = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
            if len(f) > 9 and f[3] == "0A" and int(f[1].rpartition(":")[2], 16) == port:
                found.add(f[9])
    return found if seen_table else None


def owns_port(pid: int, addr: str) -> bool:
    """Does ``pid`` hold the listening socket of ``addr``? Tells our process from a
    stranger on the same port (say, another cluster given the same ports). Where
    /proc cannot tell, assume it does."""
    inodes = _listening_inodes(_split(addr)[1])
    if inodes is None:
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


# --- starting processes -----------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a reader sees the old file or
    the new one), making its directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def child_env() -> dict[str, str]:
    """Our environment, with PYTHONPATH made absolute and able to find this checkout."""
    env = dict(os.environ)
    entries = [str(Path(e).resolve()) for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
    if str(_SOURCE_ROOT) not in entries:
        entries.append(str(_SOURCE_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(entries)
    # Keep the caller's working directory off sys.path: a stray ./node/ must not load.
    env["PYTHONSAFEPATH"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Child:
    """A process we started. Spawned rather than wrapped in a Popen: it is meant
    to outlive us, so there is nothing to reap or to warn about."""

    pid: int

    def poll(self) -> int | None:
        """Its exit status once it has exited, else None; -1 once a process
        that is not our child (one the launcher forked) has exited."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return None if running(self.pid) else -1
        return None if pid == 0 else os.waitstatus_to_exitcode(status)


def spawn_detached(argv: list[str], log_path: Path, banner: str) -> Child:
    """Start ``argv`` in its own session, stdin from /dev/null, stdout and stderr
    appended to ``log_path`` after a ``banner`` line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(banner.encode() + b"\n")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            child_env(),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
            # Whatever our shell ignores (SIGINT in background jobs), the server must not.
            setsigdef=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE),
        )
    finally:
        os.close(log_fd)
        os.close(null_fd)
    return Child(pid)
