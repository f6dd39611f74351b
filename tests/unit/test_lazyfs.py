"""The bookkeeping of the lazy filesystem (tests/lazyfs.py) on ordinary files:
after a pull of the plug, every file holds exactly what it held at its last
sync. The FUSE layer around it is tested mounted, in
tests/robustness/test_power_loss.py."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lazyfs import PAGE, UnsyncedData

pytestmark = pytest.mark.unit


class LazyFile:
    """A file written the way the lazy filesystem writes it."""

    def __init__(self, state: UnsyncedData, path: Path) -> None:
        self.state, self.path = state, path
        self.fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)

    def write(self, offset: int, data: bytes) -> None:
        self.state.before_write(self.fd, offset, len(data))
        os.pwrite(self.fd, data, offset)

    def truncate(self, length: int) -> None:
        self.state.before_truncate(self.fd, length)
        os.ftruncate(self.fd, length)

    def sync(self) -> None:
        os.fsync(self.fd)
        self.state.synced(self.fd)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def state() -> Iterator[UnsyncedData]:
    s = UnsyncedData()
    yield s
    s.pull_plug()  # closes what it holds


def test_only_synced_content_remains(tmp_path: Path, state: UnsyncedData) -> None:
    f = LazyFile(state, tmp_path / "f")
    f.write(0, b"A" * 10_000)
    f.sync()
    f.write(PAGE - 10, b"B" * 20)  # over a page boundary
    f.write(10_000, b"C" * 5_000)  # past the synced end
    assert (tmp_path / "f").read_bytes() == b"A" * (PAGE - 10) + b"B" * 20 + b"A" * (
        10_000 - PAGE - 10
    ) + b"C" * 5_000
    assert state.pull_plug() == (1, 5_000)
    assert (tmp_path / "f").read_bytes() == b"A" * 10_000
    f.close()


def test_truncate_then_extend_comes_back(tmp_path: Path, state: UnsyncedData) -> None:
    f = LazyFile(state, tmp_path / "f")
    f.write(0, bytes(range(256)) * 40)
    f.sync()
    f.truncate(100)
    f.write(20_000, b"x")  # a hole, then a byte
    f.truncate(30_000)
    state.pull_plug()
    assert (tmp_path / "f").read_bytes() == bytes(range(256)) * 40
    f.close()


def test_a_file_never_synced_comes_back_empty(tmp_path: Path, state: UnsyncedData) -> None:
    f = LazyFile(state, tmp_path / "f")
    f.write(0, b"never synced")
    assert state.pull_plug() == (1, 12)
    assert (tmp_path / "f").read_bytes() == b""
    f.close()


def test_a_sync_makes_everything_before_it_durable(tmp_path: Path, state: UnsyncedData) -> None:
    f = LazyFile(state, tmp_path / "f")
    f.write(0, b"one")
    f.truncate(1)
    f.write(1, b"two")
    f.sync()
    assert state.dirty_files == 0
    other = LazyFile(state, tmp_path / "g")
    other.write(0, b"unsynced")
    state.pull_plug()
    assert (tmp_path / "f").read_bytes() == b"otwo"
    assert (tmp_path / "g").read_bytes() == b""
    f.close()
    other.close()


def test_renamed_and_unlinked_files(tmp_path: Path, state: UnsyncedData) -> None:
    f = LazyFile(state, tmp_path / "f")
    f.write(0, b"synced")
    f.sync()
    f.write(6, b" and not")
    # A rename keeps the file's identity: its unsynced tail is still dropped.
    os.rename(tmp_path / "f", tmp_path / "renamed")
    g = LazyFile(state, tmp_path / "g")
    g.write(0, b"gone")
    state.forget(tmp_path / "g")
    os.unlink(tmp_path / "g")
    assert state.dirty_files == 1
    state.pull_plug()
    assert (tmp_path / "renamed").read_bytes() == b"synced"
    f.close()
    g.close()


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"), st.integers(0, 3 * PAGE), st.binary(min_size=1, max_size=2 * PAGE)
        ),
        st.tuples(st.just("truncate"), st.integers(0, 4 * PAGE), st.just(b"")),
        st.tuples(st.just("sync"), st.just(0), st.just(b"")),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(initial=st.binary(max_size=2 * PAGE), ops=_ops)
def test_any_history_comes_back_to_its_last_sync(
    initial: bytes, ops: list[tuple[str, int, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        path.write_bytes(initial)  # there before: durable
        state = UnsyncedData()
        f = LazyFile(state, path)
        synced = initial
        for op, n, data in ops:
            if op == "write":
                f.write(n, data)
            elif op == "truncate":
                f.truncate(n)
            else:
                f.sync()
                synced = path.read_bytes()
        state.pull_plug()
        f.close()
        assert path.read_bytes() == synced
