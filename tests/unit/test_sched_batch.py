"""tristore/server.py set_batch_scheduling: every thread of a server
process under SCHED_BATCH, and the threads started after it too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies"),
]

# Run in a process of its own: the policy would outlive the test in this one.
PROBE = """
import os, threading
from tristore.server import set_batch_scheduling

def policies():
    return sorted({os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task")})

hold = threading.Event()
before = threading.Thread(target=hold.wait)
before.start()
assert policies() == [os.SCHED_OTHER], policies()
took = set_batch_scheduling()
after = threading.Thread(target=hold.wait)
after.start()
print(took, len(os.listdir("/proc/self/task")), policies() == [os.SCHED_BATCH])
hold.set()
"""


def test_every_thread_before_and_after_is_under_sched_batch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    took, threads, batch = out.stdout.split()
    assert took == "True", out.stderr
    assert int(threads) == 3  # the main thread, one started before, one after
    assert batch == "True"
