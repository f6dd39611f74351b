"""The sync Client's wait for a call on its loop thread (tristore/client/sync.py
``_wait``): it wakes now and then for signal handlers, and a call that ends
just as a wake-up times out gives its own outcome, never the wait's timeout
(the soak's event subscriber once died of a bare TimeoutError so)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest

from tristore.client.sync import _wait

pytestmark = pytest.mark.unit


class _EndsAsTheWaitTimesOut(concurrent.futures.Future[Any]):
    """A future whose first timed wait times out at the very moment it ends."""

    def __init__(self, outcome: Any) -> None:
        super().__init__()
        self._outcome = outcome
        self._waits = 0

    def result(self, timeout: float | None = None) -> Any:
        self._waits += 1
        if self._waits == 1:
            if isinstance(self._outcome, BaseException):
                self.set_exception(self._outcome)
            else:
                self.set_result(self._outcome)
            raise concurrent.futures.TimeoutError()
        return super().result(timeout)


def test_a_call_that_ends_as_the_wait_times_out_gives_its_result() -> None:
    assert _wait(_EndsAsTheWaitTimesOut("answer")) == "answer"


def test_a_call_that_fails_as_the_wait_times_out_gives_its_error() -> None:
    with pytest.raises(ValueError, match="its own"):
        _wait(_EndsAsTheWaitTimesOut(ValueError("its own")))


def test_a_call_that_raises_timeout_itself_raises_it() -> None:
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
    fut.set_exception(TimeoutError("the call's own deadline"))
    with pytest.raises(TimeoutError, match="the call's own deadline"):
        _wait(fut)
