"""tests/netfaults.py itself: each fault does what it says to a real TCP
connection, touches nothing else, and leaves nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from tests import netfaults
from tests.netfaults import INTO, OUT, NetFaults, Side

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(120)]

_WHY = netfaults.unavailable()

#: An echo server in a process of its own (the side's process); it prints its port.
_ECHO = textwrap.dedent(
    """
    import socket, sys, threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    print(srv.getsockname()[1], flush=True)
    def serve(c):
        while data := c.recv(4096):
            c.sendall(data)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """
)


@pytest.fixture
def echo() -> Iterator[tuple[int, int]]:
    """(pid, port) of an echo server process."""
    if _WHY:
        pytest.skip(f"cannot inject network faults here: {_WHY}")
    proc = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _echoes(port: int, timeout: float = 1.0) -> bool:
    """Whether a new connection to ``port`` echoes within ``timeout``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"ping")
            return s.recv(4) == b"ping"
    except OSError:
        return False


def test_a_partition_cuts_a_side_off_and_heals(echo: tuple[int, int]) -> None:
    pid, port = echo
    other = socket.socket()  # a port of nobody's side: never touched
    other.bind(("127.0.0.1", 0))
    other.listen()
    with NetFaults([Side("s", (pid,), (port,))]) as nf:
        assert _echoes(port)
        nf.drop("s")
        assert not _echoes(port)
        with socket.create_connection(other.getsockname(), timeout=1):
            pass
        nf.heal()
        assert _echoes(port)
        # Requests vanish: the connection does not even open.
        nf.drop("s", direction=INTO)
        assert not _echoes(port)
        nf.heal()
        # Answers vanish: the server gets the SYN but its SYN-ACK is lost.
        nf.drop("s", direction=OUT)
        assert not _echoes(port)
        nf.heal()
        assert _echoes(port)
        # Every packet lost with probability 1 is a partition too.
        nf.drop("s", probability=1.0)
        assert not _echoes(port)
        nf.heal()
        assert _echoes(port)
    other.close()
    assert not nf.leftovers()


def test_an_established_connection_is_cut_off_too(echo: tuple[int, int]) -> None:
    pid, port = echo
    with (
        NetFaults([Side("s", (pid,), (port,))]) as nf,
        socket.create_connection(("127.0.0.1", port), timeout=1) as s,
    ):
        s.sendall(b"a")
        assert s.recv(1) == b"a"
        nf.drop("s")
        s.sendall(b"b")
        with pytest.raises(TimeoutError):
            s.recv(1)
        nf.heal()
        assert s.recv(1) == b"b"  # TCP retransmits once the link is back
    assert not nf.leftovers()


def test_a_delay_slows_round_trips_of_the_side_only(echo: tuple[int, int]) -> None:
    pid, port = echo
    with NetFaults([Side("s", (pid,), (port,))]) as nf:
        nf.delay("s", 100, 150)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            began = time.monotonic()
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
            took = time.monotonic() - began
        assert 0.2 <= took < 2, took  # 100-150 ms each way
        nf.heal()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            began = time.monotonic()
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
            assert time.monotonic() - began < 0.2
    assert not nf.leftovers()


def test_the_side_s_own_outgoing_connections_are_cut_off(echo: tuple[int, int]) -> None:
    """A process of the side dialling out is across the boundary too: told by its cgroup."""
    pid, port = echo
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    dial = textwrap.dedent(
        f"""
        import socket, sys
        try:
            socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=1).close()
        except OSError:
            sys.exit(1)
        """
    )
    try:
        with NetFaults([Side("s", (pid,), (port,))]) as nf:
            # A process that joins the side's cgroup before it dials is of the side.
            procs = nf.cgroup / "s" / "cgroup.procs"
            runner = f"echo $$ > {procs}; exec {sys.executable} -c '{dial}'"
            nf.drop("s")
            assert subprocess.run(["sh", "-c", runner], timeout=10).returncode == 1
            nf.heal()
            assert subprocess.run(["sh", "-c", runner], timeout=10).returncode == 0
        assert not nf.leftovers()
    finally:
        listener.close()


def test_two_instances_at_once_touch_only_their_own_sides(echo: tuple[int, int]) -> None:
    """Tests run side by side on one machine: a fault of one instance never
    touches the connections another instance marked."""
    pid, port = echo
    with NetFaults([Side("s", (pid,), (port,))]), NetFaults([Side("t", (), ())]) as other:
        other.drop("t")  # everything across t's boundary, and t is empty
        assert _echoes(port)
        other.drop("t", direction=INTO)
        assert _echoes(port)


def test_what_a_killed_test_left_behind_is_swept() -> None:
    """Chains and cgroups of a test process that was killed before it could
    clean up go at the next start; those of a live process stay."""
    if _WHY:
        pytest.skip(f"cannot inject network faults here: {_WHY}")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    chain = f"tsx{gone.pid}-dead-drop"  # the tag of a process that ended
    subprocess.run(["iptables", "-N", chain], check=True)
    subprocess.run(["iptables", "-I", "INPUT", "-i", "lo", "-j", chain], check=True)
    with NetFaults([]) as live:  # sweeps as it starts
        listed = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        assert chain not in listed
        assert live.leftovers() != []  # the live instance's own chains stay
    assert not live.leftovers()
