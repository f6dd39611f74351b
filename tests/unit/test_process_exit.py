"""A killed process is gone for the launcher only once every thread of it is:
a thread blocked in the kernel (in fdatasync, waiting for the disk) outlives
the main one, and until it ends the process's listening sockets hold their
ports, so a restart right after (``dev kill`` then ``dev start``) would find
them in use. Shown with a real process whose main thread exits alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tristore.cli import processes

pytestmark = pytest.mark.unit

#: The thread-exit system call (not exit_group): only the calling thread ends.
SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(platform.machine())

CHILD = f"""
import ctypes, os, socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)

def hold():
    sys.stdin.readline()  # until the test says so: then the whole process ends
    os._exit(0)

threading.Thread(target=hold).start()
# The main thread ends alone (ctypes lets go of the GIL for the call).
ctypes.CDLL(None).syscall({SYS_EXIT}, 0)
"""


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(
    SYS_EXIT is None or not os.path.exists("/proc/self/task"), reason="Linux x86_64/aarch64 only"
)
def test_a_process_whose_main_thread_exited_is_exiting_until_its_last_thread_is_gone() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            _exits_in_two_steps(child)
        finally:
            child.kill()


def _exits_in_two_steps(child: subprocess.Popen[str]) -> None:
    """The main thread exits alone; then, told to, the last thread."""
    assert child.stdout is not None and child.stdin is not None
    port = int(child.stdout.readline())
    assert _until(lambda: processes.exiting(child.pid)), "the main thread never exited alone"
    # What the launcher used to take for gone: no command line any more...
    assert processes.argv_of(child.pid) == []
    # ...while the port is still held by the thread that lives on.
    assert not processes.port_free(f"127.0.0.1:{port}")
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.wait(10) == 0
    assert not processes.exiting(child.pid)
    assert processes.port_free(f"127.0.0.1:{port}")


def test_a_running_process_and_a_gone_one_are_not_exiting() -> None:
    assert not processes.exiting(os.getpid())
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait(10)
    assert not processes.exiting(child.pid)
