"""tristore/malloc.py: a process's allocator thresholds, set once."""

from __future__ import annotations

import pytest

from tristore import malloc

pytestmark = pytest.mark.unit


def test_the_first_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc, "_set", None)
    monkeypatch.delenv(malloc.ENV, raising=False)
    assert malloc.tune(malloc.SERVER)  # glibc here
    # The SDK opening a door in a server's process leaves the server's.
    assert not malloc.tune(malloc.CLIENT)
    assert malloc.tune(malloc.SERVER)


def test_an_application_may_keep_its_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc, "_set", None)
    monkeypatch.setenv(malloc.ENV, "0")
    assert not malloc.tune(malloc.CLIENT)
    assert malloc._set is None
    monkeypatch.delenv(malloc.ENV)
    assert malloc.tune(malloc.CLIENT)
