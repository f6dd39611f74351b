"""Network faults between the processes of one test's cluster, on loopback.

Every process of a ``dev up`` cluster listens on 127.0.0.1, so a fault cannot
be told by address; it is told by *connection*. A :class:`NetFaults` groups
processes into named sides (an AZ's nodes, the witnesses, a replicator), each
a set of pids and the ports they listen on, and marks every new TCP
connection on loopback by where it comes from and where it goes:

- its origin side: the socket's cgroup (each side's processes are moved into
  a cgroup v2 group of their own, so their outgoing connections carry it);
- its target side: the destination port.

The marks live in conntrack (CONNMARK), so every packet of a connection, in
either direction, carries them. A fault is then a few rules in the INPUT
chain (dropping there loses packets silently, like a network; a drop in
OUTPUT would fail the sender's syscall at once): drop the packets of
connections that cross a side's boundary, both ways (a partition), only those
into the side (requests vanish) or only those out of it (answers vanish), or
a share of them at random (loss). A slow link needs a delay, which iptables
cannot do and this kernel has no netem for: new connections across the
boundary are redirected (nat REDIRECT) to a relay process that forwards each
chunk after a random delay (:func:`delay_relay`).

Everything lives in chains and cgroups named after this instance (nothing
else on the machine is touched: other tests run beside this one), and
:meth:`NetFaults.close` removes it all; use it as a context manager.

Connections made before the marking started carry no marks: ``start`` kills
them (``ss -K``) once, and the processes reconnect, marked.

Needs root, iptables with the conntrack, connmark, cgroup, multiport and
statistic matches, cgroup v2 and ``ss``; :func:`unavailable` says why not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Where the kernel's cgroup v2 hierarchy is mounted, if anywhere.
_CGROUP2_CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
#: A connection's conntrack mark, as this module writes it: the instance that
#: marked it in the top byte (several tests may inject faults at once on one
#: machine; each instance's rules match its own marks only), and two bits a
#: side (origin, target) from this bit up; the low byte is left to others.
_MARK_SHIFT = 8
_INSTANCE_SHIFT = 24
_INSTANCE_MASK = 0xFF << _INSTANCE_SHIFT
#: At most this many sides (two bits each, between the low and the top byte).
MAX_SIDES = 8
#: The skb mark of the delay relay's own connections (they are not redirected).
_RELAY_MARK = 0x7E57
#: getsockopt(SOL_IP, SO_ORIGINAL_DST): a redirected connection's real destination.
_SO_ORIGINAL_DST = 80
#: Every chain and cgroup of this module: the prefix, the pid of the process
#: that made it, '-' and a random tag (iptables chain names stay under 29 bytes).
_PREFIX = "tsx"
_TAG = re.compile(rf"{_PREFIX}(\d+)-[0-9a-f]{{4}}")
#: multiport takes at most 15 ports a rule.
_MULTIPORT_MAX = 15

BOTH = "both"
INTO = "into"
OUT = "out"


class NetFaultsUnavailable(RuntimeError):
    """This machine cannot inject network faults (not root, no netfilter...)."""


@dataclass(frozen=True)
class Side:
    """Processes that share a fate: their pids and the ports they listen on."""

    name: str
    pids: tuple[int, ...]
    ports: tuple[int, ...]


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise NetFaultsUnavailable(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def _cgroup2_root() -> Path | None:
    mounts = Path("/proc/mounts").read_text().splitlines()
    points = {line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]}
    for cand in _CGROUP2_CANDIDATES:
        if cand in points:
            return Path(cand)
    return Path(sorted(points)[0]) if points else None


def unavailable() -> str | None:
    """Why faults cannot be injected here, or None if they can."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("iptables", "ss"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    if _cgroup2_root() is None:
        return "no cgroup v2 hierarchy mounted"
    try:
        with NetFaults([]) as nf:
            nf.selfcheck()
    except (NetFaultsUnavailable, OSError) as exc:
        return str(exc)
    return None


class NetFaults:
    """Marks and faults for one set of sides; a context manager that leaves nothing behind."""

    def __init__(self, sides: Sequence[Side]) -> None:
        if len(sides) > MAX_SIDES:
            raise ValueError(f"at most {MAX_SIDES} sides")
        self.sides = {s.name: s for s in sides}
        self._bits = {s.name: i for i, s in enumerate(sides)}
        tag = f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:4]}"
        #: mangle OUTPUT: marks new connections (before nat sees them).
        self.mark_chain = f"{tag}-mark"
        #: filter INPUT: the drops of the fault that is on.
        self.drop_chain = f"{tag}-drop"
        #: nat OUTPUT: redirects to the delay relay.
        self.nat_chain = f"{tag}-nat"
        root = _cgroup2_root()
        if root is None:
            raise NetFaultsUnavailable("no cgroup v2 hierarchy mounted")
        self._cg_root = root
        self.cgroup = root / tag
        self._instance = _free_instance_id()
        self._relay: subprocess.Popen[bytes] | None = None
        self._started = False
        self.fault: str | None = None

    # -- set up and tear down -------------------------------------------------

    def __enter__(self) -> NetFaults:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _origin(self, side: str) -> int:
        return 1 << (_MARK_SHIFT + 2 * self._bits[side])

    def _target(self, side: str) -> int:
        return 2 << (_MARK_SHIFT + 2 * self._bits[side])

    def _mine(self, bits: int) -> int:
        """``bits`` with this instance's id: what a mark rule ors in."""
        return (self._instance << _INSTANCE_SHIFT) | bits

    def start(self) -> None:
        """Make the chains and cgroups, move each side's processes into theirs,
        and cut every connection they had (they reconnect, marked)."""
        sweep_stale()
        self._started = True
        self.cgroup.mkdir()
        for name, side in self.sides.items():
            group = self.cgroup / name
            group.mkdir()
            for pid in side.pids:
                (group / "cgroup.procs").write_text(str(pid))
        _run("iptables", "-t", "mangle", "-N", self.mark_chain)
        _run("iptables", "-N", self.drop_chain)
        _run("iptables", "-t", "nat", "-N", self.nat_chain)
        rel = self.cgroup.relative_to(self._cg_root)
        for name, side in self.sides.items():
            base = ["iptables", "-t", "mangle", "-A", self.mark_chain]
            _run(
                *base,
                *("-m", "cgroup", "--path", str(rel / name)),
                *("-j", "CONNMARK", "--or-mark", hex(self._mine(self._origin(name)))),
            )
            for chunk in _chunks(side.ports):
                _run(
                    *base,
                    *("-p", "tcp", "-m", "multiport", "--dports", chunk),
                    *("-j", "CONNMARK", "--or-mark", hex(self._mine(self._target(name)))),
                )
        new = ("-m", "conntrack", "--ctstate", "NEW")
        _run("iptables", "-t", "mangle", "-I", "OUTPUT", "-o", "lo", *new, "-j", self.mark_chain)
        _run("iptables", "-I", "INPUT", "-i", "lo", "-j", self.drop_chain)
        _run("iptables", "-t", "nat", "-I", "OUTPUT", "-o", "lo", *new, "-j", self.nat_chain)
        self.reset_connections(self.sides)

    def close(self) -> None:
        """Remove every rule, chain and cgroup this instance made (idempotent)."""
        if not self._started:
            return
        self._stop_relay()
        new = ("-m", "conntrack", "--ctstate", "NEW")
        for table, hook, chain, extra in (
            ("mangle", "OUTPUT", self.mark_chain, ("-o", "lo", *new)),
            ("filter", "INPUT", self.drop_chain, ("-i", "lo")),
            ("nat", "OUTPUT", self.nat_chain, ("-o", "lo", *new)),
        ):
            while (
                _run(
                    "iptables", "-t", table, "-D", hook, *extra, "-j", chain, check=False
                ).returncode
                == 0
            ):
                pass
            _run("iptables", "-t", table, "-F", chain, check=False)
            _run("iptables", "-t", table, "-X", chain, check=False)
        if self.cgroup.exists():
            procs = self._cg_root / "cgroup.procs"
            for group in self.cgroup.iterdir():
                if not group.is_dir():
                    continue
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):  # it ended meanwhile
                        procs.write_text(pid)
                with contextlib.suppress(OSError):
                    group.rmdir()
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()
        self._started = False

    def leftovers(self) -> list[str]:
        """Whatever of this instance is still on the machine (empty after close)."""
        out = []
        for table in ("mangle", "filter", "nat"):
            listed = _run("iptables", "-t", table, "-S", check=False).stdout
            out += [line for line in listed.splitlines() if self.mark_chain[:-5] in line]
        if self.cgroup.exists():
            out.append(str(self.cgroup))
        return out

    def adopt(self, side: str, pid: int) -> None:
        """Put a (re)started process into its side's cgroup; cut its connections."""
        (self.cgroup / side / "cgroup.procs").write_text(str(pid))
        self.reset_connections({side: self.sides[side]}, pids=(pid,))

    # -- faults ---------------------------------------------------------------

    def _crossing(self, side: str, other: str | None) -> list[tuple[int, int, str]]:
        """(value, mask, which end is ``side``) of the marks of connections between
        ``side`` and ``other`` (everyone else when None): 'target' when ``side``
        was dialled, 'origin' when it dialled."""
        o, t = self._origin(side), self._target(side)
        if other is None:
            pairs = [(t, o | t, "target"), (o, o | t, "origin")]
        else:
            oo, ot = self._origin(other), self._target(other)
            pairs = [(oo | t, oo | t, "target"), (o | ot, o | ot, "origin")]
        return [(self._mine(v), _INSTANCE_MASK | m, end) for v, m, end in pairs]

    def drop(
        self,
        side: str,
        other: str | None = None,
        direction: str = BOTH,
        probability: float | None = None,
    ) -> None:
        """Drop the packets between ``side`` and ``other`` (everyone else when
        None): all (``BOTH``), those into ``side`` (``INTO``: requests to it and
        answers to its own calls vanish) or those out of it (``OUT``); with
        ``probability``, only that share of them, at random."""
        self.heal()
        for value, mask, end in self._crossing(side, other):
            # ORIGINAL packets go from the dialler to the dialled.
            dirs = {
                BOTH: (None,),
                INTO: ("ORIGINAL" if end == "target" else "REPLY",),
                OUT: ("REPLY" if end == "target" else "ORIGINAL",),
            }[direction]
            for ctdir in dirs:
                rule = ["-p", "tcp", "-m", "connmark", "--mark", f"{hex(value)}/{hex(mask)}"]
                if ctdir is not None:
                    rule += ["-m", "conntrack", "--ctdir", ctdir]
                if probability is not None:
                    rule += [
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        f"{probability}",
                    ]
                _run("iptables", "-A", self.drop_chain, *rule, "-j", "DROP")
        what = f"{direction} {side}" + (f" / {other}" if other else "")
        self.fault = what + (f" loss {probability:.0%}" if probability else "")

    def delay(self, side: str, low_ms: int, high_ms: int, other: str | None = None) -> None:
        """Every new connection across ``side``'s boundary goes through a relay
        that holds each chunk ``low_ms``-``high_ms`` ms (in order) each way; the
        connections that were open are cut, so they reconnect through it."""
        self.heal()
        port = _free_port()
        self._relay = subprocess.Popen(
            [sys.executable, "-m", "tests.netfaults", str(port), str(low_ms), str(high_ms)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            stderr=subprocess.DEVNULL,  # connections cut at the end say so
        )
        _wait_listening(port, self._relay)
        _run(
            "iptables",
            "-t",
            "nat",
            "-A",
            self.nat_chain,
            "-m",
            "mark",
            "--mark",
            hex(_RELAY_MARK),
            "-j",
            "RETURN",
        )
        for value, mask, _ in self._crossing(side, other):
            _run(
                *("iptables", "-t", "nat", "-A", self.nat_chain, "-p", "tcp"),
                *("-m", "connmark", "--mark", f"{hex(value)}/{hex(mask)}"),
                *("-j", "REDIRECT", "--to-ports", str(port)),
            )
        self.reset_connections({side: self.sides[side]})
        self.fault = f"delay {low_ms}-{high_ms} ms {side}" + (f" / {other}" if other else "")

    def heal(self) -> None:
        """End the fault that is on (connections across a delay are cut: they
        reconnect directly)."""
        _run("iptables", "-F", self.drop_chain)
        _run("iptables", "-t", "nat", "-F", self.nat_chain)
        self._stop_relay()
        self.fault = None

    def _stop_relay(self) -> None:
        if self._relay is None:
            return
        self._relay.terminate()
        try:
            self._relay.wait(10)
        except subprocess.TimeoutExpired:
            self._relay.kill()
            self._relay.wait(10)
        self._relay = None

    # -- connections ----------------------------------------------------------

    def reset_connections(
        self, sides: dict[str, Side] | Iterable[Side], pids: Sequence[int] | None = None
    ) -> int:
        """Cut (``ss -K``) every established TCP connection on loopback to or
        from the ports of ``sides``, or owned by their processes; how many."""
        chosen = list(sides.values()) if isinstance(sides, dict) else list(sides)
        ports = {p for s in chosen for p in s.ports}
        owners = set(pids) if pids is not None else {p for s in chosen for p in s.pids}
        listed = _run("ss", "-tnpH", "state", "established").stdout
        cut = 0
        for line in listed.splitlines():
            # Recv-Q, Send-Q, local, peer, process (no state column: it was filtered).
            # IPv4, or IPv4 mapped into an IPv6 socket ([::ffff:127.0.0.1]:port).
            addrs = re.findall(r"(?:\[::ffff:)?(127\.[0-9.]+)\]?:(\d+)", line)
            if len(addrs) < 2:
                continue
            (_, lport), (_, pport) = addrs[0], addrs[1]
            mine = {int(m) for m in re.findall(r"pid=(\d+)", line)} & owners
            if not (mine or int(lport) in ports or int(pport) in ports):
                continue
            _run("ss", "-K", "sport", "=", f":{lport}", "dport", "=", f":{pport}", check=False)
            cut += 1
        return cut

    def selfcheck(self) -> None:
        """Whether the rules this module writes are accepted here (no processes needed)."""
        rel = self.cgroup.relative_to(self._cg_root)
        base = ["iptables", "-t", "mangle", "-A", self.mark_chain]
        _run(*base, "-m", "cgroup", "--path", str(rel), "-j", "CONNMARK", "--or-mark", "0x10000")
        _run(*base, "-p", "tcp", "-m", "multiport", "--dports", "1,2", "-j", "RETURN")
        _run(
            *("iptables", "-A", self.drop_chain, "-p", "tcp"),
            *("-m", "connmark", "--mark", "0x10000/0x30000"),
            *("-m", "conntrack", "--ctdir", "REPLY"),
            *("-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "DROP"),
        )
        _run(
            "iptables",
            "-t",
            "nat",
            "-A",
            self.nat_chain,
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            "1",
        )
        _run("ss", "-tnH", "state", "listening")


def _free_instance_id() -> int:
    """An instance id (1-255) no live instance's mark rules use."""
    listed = _run("iptables", "-t", "mangle", "-S", check=False).stdout
    taken = {
        int(m.group(1), 16) >> _INSTANCE_SHIFT
        for line in listed.splitlines()
        if _PREFIX in line
        for m in [re.search(r"--set-xmark (0x[0-9a-f]+)/", line)]
        if m is not None
    }
    free = [i for i in range(1, 256) if i not in taken]
    if not free:
        raise NetFaultsUnavailable("every instance id is taken")
    return random.choice(free)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Remove the chains and cgroups of test processes that ended without
    cleaning up (killed); those of live processes stay. What was removed."""
    removed = []
    for table, hook in (("mangle", "OUTPUT"), ("filter", "INPUT"), ("nat", "OUTPUT")):
        for line in _run("iptables", "-t", table, "-S", check=False).stdout.splitlines():
            m = _TAG.search(line)
            if m is None or _alive(int(m.group(1))):
                continue
            if line.startswith(f"-A {hook} "):
                _run("iptables", "-t", table, *line.replace("-A", "-D", 1).split(), check=False)
                removed.append(f"{table}: {line}")
        for line in _run("iptables", "-t", table, "-S", check=False).stdout.splitlines():
            m = _TAG.search(line)
            if line.startswith("-N ") and m is not None and not _alive(int(m.group(1))):
                chain = line.split()[1]
                _run("iptables", "-t", table, "-F", chain, check=False)
                _run("iptables", "-t", table, "-X", chain, check=False)
                removed.append(f"{table}: {chain}")
    root = _cgroup2_root()
    if root is not None:
        for group in root.glob(f"{_PREFIX}*-*"):
            m = _TAG.fullmatch(group.name)
            if m is None or _alive(int(m.group(1))):
                continue
            for sub in [*group.iterdir(), group]:
                if not sub.is_dir():
                    continue
                if sub != group:
                    for pid in (sub / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            (root / "cgroup.procs").write_text(pid)
                with contextlib.suppress(OSError):
                    sub.rmdir()
            removed.append(str(group))
    return removed


def _chunks(ports: Sequence[int]) -> list[str]:
    ps = sorted(set(ports))
    return [
        ",".join(map(str, ps[i : i + _MULTIPORT_MAX])) for i in range(0, len(ps), _MULTIPORT_MAX)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NetFaultsUnavailable(f"the delay relay exited {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise NetFaultsUnavailable("the delay relay did not listen")


# -- the delay relay (a process of its own: python -m tests.netfaults PORT LOW HIGH) --


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, low: float, high: float
) -> None:
    """Forward every chunk ``low``-``high`` s after it came, in order (a chunk
    never overtakes the one before it, as on a real link)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    task = asyncio.create_task(deliver())
    last = 0.0
    try:
        while data := await reader.read(65536):
            last = max(last, time.monotonic() + random.uniform(low, high))
            queue.put_nowait((last, data))
    except OSError:
        pass
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(OSError):
        await task


async def _relay_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, low: float, high: float
) -> None:
    sock = writer.get_extra_info("socket")
    raw = sock.getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack("!2xH4s8x", raw)
    out = socket.socket()
    out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, _RELAY_MARK)
    out.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(out, (socket.inet_ntoa(packed), port))
        up_r, up_w = await asyncio.open_connection(sock=out)
    except OSError:
        out.close()
        writer.close()
        return
    try:
        await asyncio.gather(_pump(reader, up_w, low, high), _pump(up_r, writer, low, high))
    finally:
        writer.close()
        up_w.close()


async def delay_relay(port: int, low_ms: int, high_ms: int) -> None:
    """Accept redirected connections on ``port`` and relay them, delayed."""
    low, high = low_ms / 1000, high_ms / 1000
    server = await asyncio.start_server(lambda r, w: _relay_one(r, w, low, high), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(delay_relay(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
