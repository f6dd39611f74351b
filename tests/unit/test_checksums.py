"""Checksums of stored values (node/records.py) and their checks in the replica
store, on a real RocksDB: a flipped byte is CorruptData (counted), a value
written before checksums still reads, a write replaces a damaged record, a
damaged chunk is mended, and a scrub step finds both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from node import keys, records
from node.replica_store import ReplicaStore, VersionRead
from tristore.config import NodeSection
from tristore.convert import version_to_pb
from tristore.errors import CorruptData
from tristore.model import Change, ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

DATA_ID = b"d" * 16
CHUNK = 1024


def _corrupt_reads(kind: str) -> float:
    return REGISTRY.get_sample_value("tristore_node_corrupt_reads_total", {"kind": kind}) or 0.0


def _flip(raw: bytes, at: int) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0x40
    return bytes(b)


def _version(ms: int = 1_000) -> ObjectVersion:
    return ObjectVersion("b", "k", Stamp(ms, 0, 1, 1), size=5, inline=b"hello")


def _chunked(ms: int = 1_000) -> ObjectVersion:
    return ObjectVersion(
        "b", "big", Stamp(ms, 0, 1, 1), size=3 * CHUNK, data_id=DATA_ID, chunk_size=CHUNK
    )


# -- framing (pure) ------------------------------------------------------------


def test_a_record_round_trips_with_its_checksum() -> None:
    v = _version()
    raw = records.encode_version(v)
    assert raw[0] == records.VERSION_V2
    assert records.decode_version(raw) == v


@pytest.mark.parametrize("at", [1, 3, 5, 10, -1])
def test_a_flipped_byte_in_a_record_is_corrupt_and_counted(at: int) -> None:
    raw = records.encode_version(_version())
    before = _corrupt_reads("record")
    with pytest.raises(CorruptData):
        records.decode_version(_flip(raw, at))
    assert _corrupt_reads("record") == before + 1


def test_an_unknown_format_byte_is_corrupt() -> None:
    raw = records.encode_version(_version())
    with pytest.raises(CorruptData):
        records.decode_version(b"\x07" + raw[1:])
    with pytest.raises(CorruptData):
        records.decode_version(b"")


def test_a_record_from_before_checksums_still_reads() -> None:
    v = _version()
    old = bytes([records.VERSION_V1]) + version_to_pb(v, True).SerializeToString()
    assert records.decode_version(old) == v


#: A multipart object's record as written before part sizes were kept (the
#: bytes of records.encode_version then): it reads with none, as one part.
RECORD_BEFORE_PART_SIZES = bytes.fromhex(
    "029cbe6fde0a016212026d701a0b0880d095ffbc3118012001280a32223031323334353637383961"
    "6263646566303132333435363738396162636465662d324a04010101015004"
)


def test_a_multipart_record_keeps_its_part_sizes_and_an_older_one_reads_without() -> None:
    old = records.decode_version(RECORD_BEFORE_PART_SIZES)
    assert (old.key, old.size, old.etag[-2:], old.part_sizes) == ("mp", 10, "-2", ())
    new = replace(old, part_sizes=(6, 4))
    assert records.decode_version(records.encode_version(new)) == new
    assert records.encode_version(replace(new, part_sizes=())) == RECORD_BEFORE_PART_SIZES


def test_a_chunk_round_trips_and_a_flip_is_caught() -> None:
    data = bytes(range(256)) * 8
    framed = records.frame_chunk(data)
    assert framed.startswith(records.CHUNK_MAGIC)
    assert records.chunk_payload(framed, strict=True) == data
    assert records.chunk_sound(framed, strict=True)
    before = _corrupt_reads("chunk")
    for at in (2, 5, records.CHUNK_HEADER + 100, -1):
        with pytest.raises(CorruptData):
            records.chunk_payload(_flip(framed, at), strict=True)
        assert not records.chunk_sound(_flip(framed, at), strict=True)
    assert _corrupt_reads("chunk") == before + 4


def test_a_chunk_from_before_checksums_reads_only_where_chunks_may_be_old() -> None:
    data = b"raw bytes of an old chunk"
    assert records.chunk_payload(data, strict=False) == data
    with pytest.raises(CorruptData):
        records.chunk_payload(data, strict=True)


# -- the replica store ---------------------------------------------------------


def _run(tmp_path: Path, body: Callable[[ReplicaStore], Awaitable[None]]) -> None:
    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 5_000)
        store.start(asyncio.get_running_loop())
        try:
            await body(store)
        finally:
            store.close()

    asyncio.run(go())


async def _chunks(n: int, fill: bytes = b"x") -> AsyncIterator[tuple[int, bytes]]:
    for i in range(n):
        yield i, fill * CHUNK


def test_a_damaged_record_fails_its_read_and_a_write_replaces_it(tmp_path: Path) -> None:
    async def body(store: ReplicaStore) -> None:
        v = _version()
        await store.commit(Change.of(v))
        okey = keys.object_key("b", "k")
        store.db.put(okey, _flip(store.db[okey], 8))
        with pytest.raises(CorruptData):
            await store.read_meta("b", "k")
        # Other keys read in the same batch are not affected.
        other = _version(2_000)
        other = ObjectVersion("b", "k2", other.stamp, size=1, inline=b"z")
        await store.commit(Change.of(other))
        got = await asyncio.gather(
            store.read_meta("b", "k"), store.read_meta("b", "k2"), return_exceptions=True
        )
        assert isinstance(got[0], CorruptData) and got[1] == other
        # The same version written back (as a read's write-back does) repairs it.
        result = await store.commit(Change.of(v))
        assert result.applied
        assert await store.read_meta("b", "k") == v

    _run(tmp_path, body)


def test_version_reads_asked_together_each_get_their_own_answer(tmp_path: Path) -> None:
    """Version reads asked together (one RocksDB batch); each gets its
    own answer (by stamp, the newest, a removed one, a missing key), and a
    damaged record fails its own read only."""

    async def body(store: ReplicaStore) -> None:
        v1, v2 = _version(1_000), _version(2_000)
        other = ObjectVersion("b", "k2", Stamp(3_000, 0, 1, 1), size=1, inline=b"z")
        for v in (v1, v2, other):
            await store.commit(Change.of(v))
        await store.commit(Change("b", "k", Stamp(4_000, 0, 1, 1), removed=(v1.vstamp,)))
        vk = keys.version_key("b", "k2", other.vstamp.encode())
        store.db.put(vk, _flip(store.db[vk], 8))
        got = await asyncio.gather(
            store.read_versions("b", "k", v2.vstamp),
            store.read_versions("b", "k", None, False, 5),
            store.read_versions("b", "k", v1.vstamp),
            store.read_versions("b", "nothing"),
            store.read_versions("b", "k2", other.vstamp),
            store.read_versions("b", "k2", None, False, 5),
            return_exceptions=True,
        )
        assert got[0] == ([v2], False)
        assert got[1] == ([v2], False)
        assert got[2] == ([], True)  # removed for good
        assert got[3] == ([], False)
        assert isinstance(got[4], CorruptData) and isinstance(got[5], CorruptData)
        raws, removed = await store.read_version_records(VersionRead("b", "k", v2.vstamp))
        assert [records.decode_version(r) for r in raws] == [v2] and not removed

    _run(tmp_path, body)


def test_a_damaged_chunk_fails_its_read_and_is_mended(tmp_path: Path) -> None:
    async def body(store: ReplicaStore) -> None:
        assert store.strict_chunks  # a new data directory
        v = _chunked()
        await store.stage(DATA_ID, _chunks(3))
        await store.commit(Change.of(v))
        ck = keys.chunk_key(DATA_ID, 1)
        store.db.put(ck, _flip(store.db[ck], 500))
        with pytest.raises(CorruptData):
            _ = [p async for p in store.read_data(DATA_ID, CHUNK, 0, 3 * CHUNK)]
        assert await store.read_chunk(DATA_ID, 0) == b"x" * CHUNK
        # Mending writes only the damaged chunk, and makes no chunk anew.
        assert await store.mend(DATA_ID, _chunks(4)) == 1
        assert store.db.get(keys.chunk_key(DATA_ID, 3)) is None
        got = b"".join([p async for p in store.read_data(DATA_ID, CHUNK, 0, 3 * CHUNK)])
        assert got == b"x" * 3 * CHUNK

    _run(tmp_path, body)


def test_a_store_from_before_checksums_reads_its_old_chunks(tmp_path: Path) -> None:
    async def body(store: ReplicaStore) -> None:
        store.db.delete(keys.meta_key("chunk_crc"))
        store.db.put(keys.chunk_key(DATA_ID, 0), b"old raw chunk")

    _run(tmp_path, body)

    async def reopened(store: ReplicaStore) -> None:
        assert not store.strict_chunks
        assert await store.read_chunk(DATA_ID, 0) == b"old raw chunk"

    _run(tmp_path, reopened)


def test_a_scrub_step_finds_damaged_records_and_chunks(tmp_path: Path) -> None:
    async def body(store: ReplicaStore) -> None:
        await store.commit(Change.of(_version()))
        await store.stage(DATA_ID, _chunks(3))
        await store.commit(Change.of(_chunked()))
        okey = keys.object_key("b", "k")
        store.db.put(okey, _flip(store.db[okey], 8))
        ck = keys.chunk_key(DATA_ID, 2)
        store.db.put(ck, _flip(store.db[ck], 99))
        page = await store.scrub_page(keys.OBJECT, None, 1 << 30, 1000)
        assert page.cursor is None and not page.unreadable
        assert page.records == 2 and page.chunks == 3
        assert page.bad_records == [okey]
        assert [(v.key, i) for v, i in page.bad_chunks] == [("big", 2)]
        # Small steps cover the same ground, resuming inside a body.
        seen: list[int] = []
        cursor = None
        while True:
            page = await store.scrub_page(keys.OBJECT, cursor, CHUNK, 1000)
            seen += [i for _, i in page.bad_chunks]
            if page.cursor is None:
                break
            cursor = page.cursor
        assert seen == [2]

    _run(tmp_path, body)


def test_a_refused_write_back_of_a_held_body_leaves_no_staging_marker(tmp_path: Path) -> None:
    """Two heals of one damaged copy (or two write-backs racing) both stage the
    body; the second commit is refused, and its staging marker must not make
    the collector take the body for an abandoned upload."""

    async def body(store: ReplicaStore) -> None:
        v = _chunked()
        await store.stage(DATA_ID, _chunks(3))
        assert (await store.commit(Change.of(v))).applied
        await store.stage(DATA_ID, _chunks(3))
        assert store.db.get(keys.staged_key(DATA_ID)) is not None
        assert not (await store.commit(Change.of(v))).applied
        assert store.db.get(keys.staged_key(DATA_ID)) is None

    _run(tmp_path, body)


def test_the_background_scrub_is_paced_and_remembers_its_pass(tmp_path: Path) -> None:
    from node.scrub import Scrubber
    from tristore.config import NodeSpec

    mib = 1024 * 1024
    cfg = NodeSection(scrub_interval_s=0.001, scrub_bytes_per_s=2 * mib, scrub_step_bytes=mib)
    me = NodeSpec(name="a1", az="az-a", grpc="127.0.0.1:1", metrics="127.0.0.1:2", id=1)

    async def go() -> None:
        store = ReplicaStore(tmp_path / "n", cfg, lambda: 5_000)
        store.start(asyncio.get_running_loop())
        try:
            v = ObjectVersion(
                "b", "big", Stamp(1_000, 0, 1, 1), size=3 * mib, data_id=DATA_ID, chunk_size=mib
            )

            async def chunks() -> AsyncIterator[tuple[int, bytes]]:
                for i in range(3):
                    yield i, bytes([i]) * mib

            await store.stage(DATA_ID, chunks())
            await store.commit(Change.of(v))
            # No damage: the repairer is never asked.
            scrubber = Scrubber(store, None, cfg, me)  # type: ignore[arg-type]
            loop = asyncio.get_running_loop()
            started = loop.time()
            reports = [r async for r in scrubber.run(paced=True)]
            assert loop.time() - started >= 0.9  # 3 MiB at 2 MiB/s, the last step unpaced
            final = reports[-1]
            # The current record, its version record and its change-log entry;
            # the body read once.
            assert final.done and (final.records_checked, final.chunks_checked) == (3, 3)
            assert final.bytes_checked > 3 * mib and final.unrepaired == 0
            task = asyncio.create_task(scrubber.run_forever())
            for _ in range(100):
                if store.scrub_done_ms:
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            assert store.scrub_done_ms == 5_000
        finally:
            store.close()

    asyncio.run(go())
    reopened = ReplicaStore(tmp_path / "n", cfg, lambda: 5_000)
    try:
        assert reopened.scrub_done_ms == 5_000
    finally:
        reopened.close()


# -- change-log entries, hints and markers -----------------------------------------


def test_log_entries_hints_and_markers_are_framed_and_old_ones_still_read() -> None:
    change = Change.of(_version())
    entry = records.encode_change(change)
    assert entry[0] == records.FRAMED and records.decode_change(entry) == change
    old_entry = bytes([records.VERSION_V1]) + entry[5:]  # as written before checksums
    assert records.decode_change(old_entry) == change
    stamp = Stamp(1_000, 2, 1, 3)
    assert records.decode_hint(records.encode_hint(stamp)) == stamp
    assert records.decode_hint(stamp.encode()) == stamp  # a bare stamp: an old hint
    assert records.decode_marker(records.encode_marker(7_000)) == 7_000
    assert records.decode_marker(bytes([1]) + (7_000).to_bytes(8, "big")) == 7_000
    assert records.decode_marker(b"\x01") == 0  # an undated removal marker
    # A try's removal marker (Change.withdrawn) keeps its date, and says so.
    assert records.decode_marker(records.encode_marker(7_000, True)) == 7_000
    assert records.marker_withdrawn(records.encode_marker(7_000, True))
    for plain in (records.encode_marker(7_000), b"\x01", _flip(records.encode_marker(7, True), 3)):
        assert not records.marker_withdrawn(plain)
    for kind, raw, decode in (
        (records.LOG, entry, records.decode_change),
        (records.HINT, records.encode_hint(stamp), records.decode_hint),
        (records.MARKER, records.encode_marker(7_000), records.decode_marker),
    ):
        for at in (1, len(raw) - 1):
            before = _corrupt_reads(kind)
            with pytest.raises(CorruptData, match="checksum"):
                decode(_flip(raw, at))  # type: ignore[operator]
            assert _corrupt_reads(kind) == before + 1
            assert not records.value_sound(kind, _flip(raw, at))
        assert records.value_sound(kind, raw)


def test_a_scrub_step_finds_damaged_log_entries_hints_and_markers_and_mends_some(
    tmp_path: Path,
) -> None:
    async def body(store: ReplicaStore) -> None:
        v = _version()
        await store.commit(Change.of(v), hint_for="home")
        await store.commit(Change("b", "k", Stamp(2_000, 0, 1, 1), removed=(v.vstamp,)))
        hk = keys.hint_key("home", "b", "k")
        lk = keys.log_key(1)
        rk = keys.removed_key("b", "k", v.vstamp.encode())
        for k in (hk, lk, rk):
            store.db.put(k, _flip(store.db[k], 6))
        for prefix, kind, bad in (
            (keys.LOG, records.LOG, lk),
            (keys.HINT, records.HINT, hk),
            (keys.REMOVED, records.MARKER, rk),
        ):
            page = await store.scrub_values(prefix, kind, None, 1 << 30, 1000)
            assert page.bad_values == [bad] and page.cursor is None
            assert await store.mend_value(bad) == (kind != records.LOG)
        # Mended from what is known without them: the oldest hint, an old marker.
        assert await store.hints_for("home") == [("b", "k", Stamp.decode(bytes(16)))]
        assert records.decode_marker(store.db[rk]) == 0
        assert not records.value_sound(records.LOG, store.db[lk])
        # The hint still hands off, and goes.
        assert await store.drop_hint("home", "b", "k", Stamp.decode(bytes(16)), False)
        assert store.hints_pending == 0

    _run(tmp_path, body)
