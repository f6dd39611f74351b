"""One simulated run: a cluster, clients, a nemesis, and the checks; pure in the seed.

:func:`run` builds a cluster of six nodes (three AZs of two) and three
witnesses from the real code (tests/sim/cluster.py) on a virtual clock and
an in-memory network (tests/sim/loop.py, tests/sim/net.py), has a few
clients PUT, GET, DELETE and conditionally PUT one or two keys through
different coordinators while a nemesis crashes and restarts nodes and
witnesses, cuts links (both ways or one), slows nodes and skews their
clocks, then heals everything, reads every key back, and checks:

- the history is linearizable (tests/linearizability.py);
- no read returned the value of a conditional PUT that was refused;
- in a versioned bucket, every acknowledged version is held by a node of
  each of its key's three AZs at the end (nothing acknowledged was lost),
  unless a DELETE of it may have taken effect, and no node holds a version
  a refused conditional PUT wrote;
- with ``version_deletes``, no version whose DELETE was acknowledged is
  read at the end (nor, by linearizability, by any read after its DELETE);
- no call failed with an error a fault does not explain (an InternalError
  is a bug), and the run did not hang (every task waiting, no timer).

Every choice (parameters, delays, faults, client operations) comes from one
``random.Random(seed)``; the same seed gives the same run, event for event
(:attr:`Result.digest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from node.objects import PutHeader
from tests import linearizability as lin
from tests.sim.cluster import EPOCH_MS, SimNode, SimWitness
from tests.sim.loop import OWNER, Deadlock, SimLoop, _task_order
from tests.sim.net import SimNet
from tristore import config, errors
from tristore.config import ClusterConfig
from tristore.placement import Placer
from tristore.stamps import Stamp

BUCKET = "sim"
#: Failures a fault explains: the outcome of a write that failed so is unknown.
EXPECTED = (
    errors.ServiceUnavailable,
    errors.QuorumUnavailable,
    errors.SlowDown,
    errors.OutcomeUnknown,
)
#: How a conditional PUT is refused (nothing may have been written).
REFUSED = (errors.PreconditionFailed, errors.ConditionalRequestConflict, errors.NoSuchKey)
MUTANTS = {"skip_witness": "unsafe_skip_witness", "skip_floor": "unsafe_skip_floor"}


@dataclass(frozen=True)
class Params:
    """What a run does (the seed picks the rest: versioning, clients, faults)."""

    #: Operations each client runs before the final reads.
    ops_per_client: int = 12
    #: Faults on (a run without them checks the fault-free interleavings).
    faults: bool = True
    #: "", "skip_witness" or "skip_floor": a deliberately broken node config.
    mutant: str = ""
    #: Client deadline of one call (virtual seconds).
    call_timeout_s: float = 6.0
    #: One fault at a time, crashes and restarts only (nodes and witnesses,
    #: the witness table forgetting too), no cut or slow links or stalls past
    #: a deadline, and the default deadlines (False: the full mix).
    gentle: bool = False
    #: Clients also change the tags of a key's current version
    #: (PutObjectTagging: a conditional edit of its record, which changes no
    #: value), in place of some conditional PUTs. Off, a seed runs as it
    #: always did.
    tags: bool = False
    #: In a versioned bucket, clients also change the tags or the ACL of an
    #: acknowledged version, current or not (PutObjectTagging and
    #: PutObjectAcl with a version id). Each part of each version is a
    #: register of the history (``KEY@VERSION/tags``, ``/acl``), read at the
    #: end: an acknowledged change that another change of the same version
    #: dropped fails linearizability. Off, a seed runs as it always did.
    edits: bool = False
    #: Clients also DELETE acknowledged versions by their id, current or
    #: not (every run versioned). A key whose history has such a DELETE is
    #: checked as its list of versions (tests/linearizability.py: the
    #: current version's DELETE uncovers the one before), and a version
    #: whose DELETE was acknowledged must be gone for good. Off, a seed runs
    #: as it always did.
    version_deletes: bool = False
    #: Half the DELETEs are conditional (If-Match: one of the ETags of the
    #: key's three newest acknowledged PUTs, or ``*``): one refused (PreconditionFailed,
    #: NoSuchKey, ConditionalRequestConflict) must not take effect, which
    #: linearizability checks (it is no operation of the history). Off, a
    #: seed runs as it always did.
    cond_deletes: bool = False


#: The ACLs an edit sets ("private", the default, stands for none set).
EDIT_ACLS = ("public-read", "authenticated-read", "bucket-owner-read", "bucket-owner-full-control")


@dataclass
class Result:
    seed: int
    ok: bool
    violations: list[str]
    #: Hash of every event: messages, operations, faults, log lines.
    digest: str
    ops: int
    #: Virtual seconds the run took, and the real seconds it cost.
    virtual_s: float
    wall_s: float
    messages: int
    faults: int
    trace: list[str] = field(repr=False, default_factory=list)
    history: list[lin.Op] = field(repr=False, default_factory=list)

    def replay_hint(self, params: Params) -> str:
        extra = f" --ops {params.ops_per_client}"
        if params.mutant:
            extra += f" --mutant {params.mutant}"
        if not params.faults:
            extra += " --no-faults"
        if params.gentle:
            extra += " --gentle"
        if params.tags:
            extra += " --tags"
        if params.edits:
            extra += " --edits"
        if params.version_deletes:
            extra += " --version-deletes"
        if params.cond_deletes:
            extra += " --cond-deletes"
        return f"python -m tests.sim --seed {self.seed}{extra} -v"


class _TraceLog(logging.Handler):
    def __init__(self, sim: Sim) -> None:
        super().__init__(logging.INFO)
        self.sim = sim

    def emit(self, record: logging.LogRecord) -> None:
        self.sim.note(f"log {record.levelname} {record.name}: {record.getMessage()}")


class Sim:
    def __init__(self, seed: int, params: Params, root: Path) -> None:
        self.seed = seed
        self.params = params
        self.rng = random.Random(seed)
        self.trace: list[str] = []
        self.digest = hashlib.blake2b(digest_size=16)
        rng = self.rng
        self.loop = SimLoop(rng, lambda: rng.uniform(0.00005, 0.0005))
        self.net = SimNet(self.loop, self.note)
        self.versioned = rng.random() < 0.5 or params.version_deletes
        self.keys = ["k0", "k1"][: rng.choice((1, 2))]
        self.n_clients = rng.randint(3, 5)
        #: Clients that retry a failed conditional PUT (as the SDK does).
        self.retrying = {c for c in range(self.n_clients) if rng.random() < 0.5}
        # A witness that forgets (evictions, with their floors) in some runs.
        max_keys = rng.choice((100_000, 100_000, 2))
        # Deadlines short and long: short ones leave more writes half done.
        timeouts = {
            "replica_timeout_s": rng.choice((0.3, 1.0, 5.0)),
            "witness_timeout_s": rng.choice((0.2, 1.0)),
            "check_hedge_s": rng.choice((0.02, 0.2)),
        }
        self.call_timeout_s = rng.choice((1.0, 3.0, params.call_timeout_s))
        if params.gentle:
            timeouts = {"replica_timeout_s": 5.0, "witness_timeout_s": 1.0, "check_hedge_s": 0.2}
            self.call_timeout_s = params.call_timeout_s
        self.net.stalls = not params.gentle
        self.cfg = _config(root, max_keys, params.mutant, timeouts)
        self.nodes = [
            SimNode(self, spec, root / spec.name, self._skew(rng)) for spec in self.cfg.nodes
        ]
        self.witnesses = [SimWitness(self, w) for w in self.cfg.witnesses]
        self.history: list[lin.Op] = []
        self.refused: set[str] = set()
        #: (key, version id) of every acknowledged PUT or delete marker.
        self.acked_versions: list[tuple[str, str]] = []
        #: Those that are versions (not delete markers), and those edited.
        self.editable: list[tuple[str, str]] = []
        self.edited: set[tuple[str, str]] = set()
        #: With version_deletes: (key, version id) -> the value its PUT wrote,
        #: of every acknowledged PUT; the versions whose DELETE was tried
        #: (it may have taken effect), and those whose DELETE was acknowledged.
        self.values: dict[tuple[str, str], str] = {}
        self.delete_tried: set[tuple[str, str]] = set()
        self.deleted: set[tuple[str, str]] = set()
        #: With cond_deletes: the ETags acknowledged PUTs wrote, by key, and
        #: the value each stands for (values are unique).
        self.etags_written: dict[str, list[str]] = {}
        self.etag_values: dict[str, str] = {}
        self.violations: list[str] = []
        self.faults = 0
        self.active_faults = 0
        self.ops = 0

    @staticmethod
    def _skew(rng: random.Random) -> int:
        return rng.choice((0, 0, 0, rng.randint(-3000, 3000)))

    def note(self, line: str) -> None:
        entry = f"{self.loop.now:10.6f} {line}"
        self.trace.append(entry)
        self.digest.update(entry.encode() + b"\n")

    def fsync_delay(self) -> float:
        return self.rng.uniform(0.0005, 0.004)

    def node(self, name: str) -> SimNode:
        return next(n for n in self.nodes if n.name == name)

    # -- calls -------------------------------------------------------------------

    async def call(self, node: SimNode, fn: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        """``fn(coordinator)`` as a request handled by ``node``: a task of its
        process (its crash cancels it), with the client's deadline. Raises
        what it raised; TimeoutError at the deadline; ConnectionError when
        the node is down or died meanwhile."""
        await asyncio.sleep(self.net.latency("client", node.name))
        coord = node.coord
        if not node.up or coord is None:
            raise ConnectionError(f"{node.name} is down")
        token = OWNER.set(node.name)
        try:
            task: asyncio.Task[Any] = self.loop.create_task(fn(coord))
        finally:
            OWNER.reset(token)
        done, _ = await asyncio.wait({task}, timeout=self.call_timeout_s)
        if not done:
            task.cancel()
            raise TimeoutError(f"no answer from {node.name} in {self.call_timeout_s}s")
        if task.cancelled():
            raise ConnectionError(f"{node.name} crashed during the call")
        await asyncio.sleep(self.net.latency(node.name, "client"))
        return task.result()

    # -- clients -----------------------------------------------------------------

    async def client(self, cid: int) -> None:
        rng = self.rng
        node = rng.choice(self.nodes)
        etags: dict[str, str | None] = {}
        for n in range(self.params.ops_per_client):
            await asyncio.sleep(rng.uniform(0.0, 0.25))
            if not node.up or rng.random() < 0.1:
                node = rng.choice(self.nodes)
            key = rng.choice(self.keys)
            x = rng.random()
            if x < 0.4:
                await self.get(cid, node, key, etags)
            elif x < 0.7:
                await self.put(cid, node, key, f"c{cid}-{n}")
            elif x < 0.8:
                cond = ""
                if self.params.cond_deletes and rng.random() < 0.5:
                    # One of the key's newest ETags (often not its current
                    # one: refused), or any.
                    cond = rng.choice(self.etags_written.get(key, [])[-3:] or ["*"])
                await self.delete(cid, node, key, cond)
            elif self.params.tags and x < 0.9:
                await self.tag(cid, node, key, f"c{cid}-{n}")
            elif self.params.edits and self.editable and x < 0.9:
                # The newest two: edits of one version at once, more often.
                await self.edit(cid, node, rng.choice(self.editable[-2:]), f"c{cid}-{n}")
            elif self.params.version_deletes and self.editable and x < 0.9:
                # The newest three: the current version of a key, most often.
                await self.delete_version(cid, node, rng.choice(self.editable[-3:]))
            else:
                await self.put(cid, node, key, f"c{cid}-{n}", cond=etags.get(key, ""))

    async def get(
        self, cid: int, node: SimNode, key: str, etags: dict[str, str | None] | None = None
    ) -> bool:
        async def op(coord: Any) -> tuple[str | None, str | None]:
            try:
                res = await coord.get_object(BUCKET, key)
            except errors.NoSuchKey:
                return None, None
            body = b"".join([p async for p in res.body])
            return body.decode(), res.info.etag

        invoked = self.loop.now
        self.note(f"c{cid} GET {key} via {node.name}")
        try:
            value, etag = await self.call(node, op)
        except Exception as exc:  # noqa: BLE001 - judged below
            self._failed(cid, "GET", key, exc)
            return False
        self.ops += 1
        self.note(f"c{cid} GET {key} -> {value!r}")
        self.history.append(lin.Op(key, lin.READ, value, invoked, self.loop.now, True, cid))
        if etags is not None:
            etags[key] = etag
        if value in self.refused:
            self.violations.append(
                f"c{cid} read {key}={value!r}, the value of a refused conditional PUT"
            )
        return True

    async def put(
        self, cid: int, node: SimNode, key: str, value: str, cond: str | None = ""
    ) -> None:
        """A PUT of ``value``; ``cond`` None: If-None-Match *, an ETag: If-Match.

        A conditional PUT of a client that retries is tried up to three
        times, on another coordinator after a failure, as the SDK does: the
        same request id, and ``resend`` once an attempt may have taken effect
        (a retried plain PUT may write twice, which a history of calls cannot
        show, so it is not retried)."""
        conditional = cond != ""
        header = PutHeader(
            BUCKET,
            key,
            size=len(value),
            if_none_match="*" if cond is None else "",
            if_match=cond or "",
            request_id=value,
            first_attempt_ms=EPOCH_MS + int(self.loop.now * 1000),
        )
        what = "CPUT" if conditional else "PUT"
        attempts = 3 if conditional and cid in self.retrying else 1
        invoked = self.loop.now
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.rng.uniform(0.05, 0.5))
                header = replace(header, resend=True)
                node = self.rng.choice(self.nodes)

            async def op(coord: Any, header: PutHeader = header) -> Any:
                return await coord.put_object(header, _single(value.encode()))

            self.note(f"c{cid} {what} {key}={value!r} via {node.name} ({cond or ''}) #{attempt}")
            try:
                info = await self.call(node, op)
            except REFUSED as exc:
                if not conditional:
                    self._failed(cid, what, key, exc)
                else:
                    self.ops += 1
                    self.refused.add(value)
                    self.note(f"c{cid} {what} {key}={value!r} refused: {type(exc).__name__}")
                return
            except Exception as exc:  # noqa: BLE001 - judged below
                self._failed(cid, what, key, exc)
                if attempt + 1 < attempts and not isinstance(exc, errors.OutcomeUnknown):
                    continue
                self.history.append(lin.Op(key, lin.WRITE, value, invoked, ok=False, client=cid))
                return
            break
        self.ops += 1
        self.note(f"c{cid} {what} {key}={value!r} ok {info.version_id}")
        if self.params.cond_deletes:
            self.etags_written.setdefault(key, []).append(info.etag)
            self.etag_values[info.etag] = value
        self.history.append(lin.Op(key, lin.WRITE, value, invoked, self.loop.now, True, cid))
        if self.versioned:
            self.acked_versions.append((key, info.version_id))
            self.editable.append((key, info.version_id))
            self.values[(key, info.version_id)] = value

    async def delete(self, cid: int, node: SimNode, key: str, cond: str = "") -> None:
        """A DELETE; ``cond``: If-Match (an ETag, or ``*``)."""

        async def op(coord: Any) -> Any:
            return await coord.delete_object(BUCKET, key, "", cond)

        # A conditional DELETE takes effect only where the key holds the value
        # whose ETag it names (any value, for ``*``).
        expect: Any = lin.UNCONDITIONAL
        if cond:
            expect = lin.PRESENT if cond == "*" else self.etag_values[cond]
        invoked = self.loop.now
        self.note(f"c{cid} DELETE {key} via {node.name}" + (f" (If-Match {cond})" if cond else ""))
        try:
            res = await self.call(node, op)
        except REFUSED as exc:
            if cond:
                self.ops += 1  # nothing deleted: no operation of the history
                self.note(f"c{cid} DELETE {key} refused: {type(exc).__name__}")
                return
            self._failed(cid, "DELETE", key, exc)
            self.history.append(lin.Op(key, lin.WRITE, None, invoked, ok=False, client=cid))
            return
        except Exception as exc:  # noqa: BLE001 - judged below
            self._failed(cid, "DELETE", key, exc)
            self.history.append(
                lin.Op(key, lin.WRITE, None, invoked, ok=False, client=cid, expect=expect)
            )
            return
        self.ops += 1
        self.note(f"c{cid} DELETE {key} ok {res.version_id}")
        self.history.append(
            lin.Op(key, lin.WRITE, None, invoked, self.loop.now, True, cid, expect=expect)
        )
        if self.versioned and res.version_id:
            self.acked_versions.append((key, res.version_id))

    async def tag(self, cid: int, node: SimNode, key: str, value: str) -> None:
        """New tags on the key's current version: no value changes, so it is
        no operation of the history, but a read after it (and after any PUT
        acknowledged before it) must not return an older value."""

        async def op(coord: Any) -> Any:
            return await coord.put_object_tagging(BUCKET, key, "", {"by": value})

        self.note(f"c{cid} TAG {key} via {node.name}")
        try:
            await self.call(node, op)
        except (
            errors.NoSuchKey,  # absent
            errors.MethodNotAllowed,  # a delete marker
            errors.ConditionalRequestConflict,  # the key kept changing: retry
        ) as exc:
            self.ops += 1
            self.note(f"c{cid} TAG {key}: {type(exc).__name__}")
            return
        except Exception as exc:  # noqa: BLE001 - judged below
            self._failed(cid, "TAG", key, exc)
            return
        self.ops += 1
        self.note(f"c{cid} TAG {key} ok")

    async def edit(self, cid: int, node: SimNode, version: tuple[str, str], value: str) -> None:
        """New tags (``{"by": value}``) or a new ACL on an acknowledged
        version: a write of its register (``KEY@VERSION/tags`` or ``/acl``)."""
        key, vid = version
        part = self.rng.choice(("tags", "acl"))
        if part == "acl":
            value = self.rng.choice(EDIT_ACLS)

        async def op(coord: Any) -> Any:
            if part == "tags":
                return await coord.put_object_tagging(BUCKET, key, vid, {"by": value})
            return await coord.put_object_acl(BUCKET, key, vid, value)

        register = f"{key}@{vid}/{part}"
        invoked = self.loop.now
        self.note(f"c{cid} EDIT {register}={value!r} via {node.name}")
        self.edited.add(version)
        # Failed, maybe written (a try the first AZ took before the call failed).
        ok = await self._change_of_a_version(cid, node, "EDIT", register, op)
        done = self.loop.now if ok else math.inf
        self.history.append(lin.Op(register, lin.WRITE, value, invoked, done, ok, cid))

    async def _change_of_a_version(
        self,
        cid: int,
        node: SimNode,
        what: str,
        name: str,
        op: Callable[[Any], Coroutine[Any, Any, Any]],
    ) -> bool:
        """Run a change of one version (an edit, a DELETE by id); whether it
        was acknowledged. ConditionalRequestConflict (the key kept changing:
        retry) is an answer, not a fault."""
        try:
            await self.call(node, op)
        except Exception as exc:  # noqa: BLE001 - judged below
            if not isinstance(exc, errors.ConditionalRequestConflict):
                self._failed(cid, what, name, exc)
            else:
                self.ops += 1
            return False
        self.ops += 1
        self.note(f"c{cid} {what} {name} ok")
        return True

    async def delete_version(self, cid: int, node: SimNode, version: tuple[str, str]) -> None:
        """A DELETE of an acknowledged version by its id: the REMOVE of its
        value from the key's list of versions."""
        key, vid = version
        value = self.values[version]

        async def op(coord: Any) -> Any:
            return await coord.delete_object(BUCKET, key, vid)

        invoked = self.loop.now
        self.note(f"c{cid} DELETE {key}@{vid} ({value!r}) via {node.name}")
        self.delete_tried.add(version)
        ok = await self._change_of_a_version(cid, node, "DELETE", f"{key}@{vid}", op)
        if ok:
            self.deleted.add(version)
        done = self.loop.now if ok else math.inf
        self.history.append(lin.Op(key, lin.REMOVE, value, invoked, done, ok, cid))

    async def check_deleted_versions(self) -> None:
        """Every version whose DELETE was acknowledged, once every fault
        healed: a GET of it answers NoSuchVersion. (A node may still hold it
        beside its removal marker, until the tombstone collector finishes
        the removal there: not checked.)"""
        for i, (key, vid) in enumerate(sorted(self.deleted)):
            node = self.nodes[i % len(self.nodes)]

            async def op(coord: Any, key: str = key, vid: str = vid) -> Any:
                try:
                    await coord.get_object(BUCKET, key, version_id=vid)
                except errors.NoSuchVersion:
                    return False
                return True

            for _ in range(5):
                try:
                    found = await self.call(node, op)
                except Exception as exc:  # noqa: BLE001 - tried again
                    self.note(f"final read of deleted {key}@{vid}: {exc!r}")
                    await asyncio.sleep(0.5)
                    continue
                if found:
                    self.violations.append(
                        f"{key}@{vid} was read after its DELETE was acknowledged"
                    )
                break
            else:
                self.violations.append(f"final read of deleted {key}@{vid} kept failing")

    async def read_edits(self) -> None:
        """Each edited version's tags and ACL, read once every fault healed:
        the reads of its registers."""
        for i, (key, vid) in enumerate(sorted(self.edited)):
            node = self.nodes[i % len(self.nodes)]

            async def op(coord: Any, key: str = key, vid: str = vid) -> tuple[Any, Any]:
                tags = await coord.get_object_tagging(BUCKET, key, vid)
                acl = await coord.get_object_acl(BUCKET, key, vid)
                return tags.tags.get("by"), (None if acl.acl == "private" else acl.acl)

            for _ in range(5):
                invoked = self.loop.now
                try:
                    tags, acl = await self.call(node, op)
                except Exception as exc:  # noqa: BLE001 - tried again
                    self.note(f"final read of {key}@{vid}'s tags and ACL: {exc!r}")
                    await asyncio.sleep(0.5)
                    continue
                done = self.loop.now
                self.note(f"final read of {key}@{vid}: tags by {tags!r}, ACL {acl!r}")
                for part, value in (("tags", tags), ("acl", acl)):
                    register = f"{key}@{vid}/{part}"
                    self.history.append(lin.Op(register, lin.READ, value, invoked, done, True))
                break
            else:
                self.violations.append(f"final read of {key}@{vid}'s tags and ACL kept failing")

    def _failed(self, cid: int, what: str, key: str, exc: BaseException) -> None:
        self.ops += 1
        self.note(f"c{cid} {what} {key} failed: {type(exc).__name__}: {exc}")
        if not isinstance(exc, (*EXPECTED, TimeoutError, ConnectionError)):
            self.violations.append(
                f"c{cid} {what} {key}: unexpected {type(exc).__name__}: {exc} "
                f"(at t={self.loop.now:.6f})"
            )

    # -- faults ------------------------------------------------------------------

    async def nemesis(self, stop: asyncio.Event) -> None:
        rng = self.rng
        held: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            most = 1 if self.params.gentle else rng.choice((1, 2, 2, 3, 4))
            if stop.is_set() or self.active_faults >= most:
                continue
            fault = self._pick_fault(rng)
            if fault is not None:
                t = self.loop.create_task(fault)
                held.add(t)
                t.add_done_callback(held.discard)
        while held:
            await asyncio.gather(*held)

    def _pick_fault(self, rng: random.Random) -> Any:
        x = rng.random()
        last = rng.uniform(0.1, 2.5)
        if x < 0.3 or (self.params.gentle and x < 0.6):
            return self._down(rng.choice(self.nodes), last)
        if x < 0.45 or self.params.gentle:
            return self._down(rng.choice(self.witnesses), last)
        names = [n.name for n in self.nodes] + [w.name for w in self.witnesses]
        if x < 0.8:
            victim = rng.choice(names)
            others = [n for n in names if n != victim]
            way = rng.choice(("both", "in", "out"))
            pairs: list[tuple[str, str]] = []
            if way in ("both", "out"):
                pairs += [(victim, o) for o in others]
            if way in ("both", "in"):
                pairs += [(o, victim) for o in others]
            return self._cut(f"{victim} cut off ({way})", pairs, last)
        victim = rng.choice([n.name for n in self.nodes])
        return self._slow(victim, rng.uniform(0.02, 0.4), last)

    async def _down(self, proc: SimNode | SimWitness, last: float) -> None:
        if not proc.up:
            return
        self.faults += 1
        self.active_faults += 1
        self.note(f"FAULT crash {proc.name} for {last:.3f}s")
        proc.crash()
        await asyncio.sleep(last)
        proc.start()
        self.note(f"FAULT restart {proc.name}")
        self.active_faults -= 1

    async def _cut(self, what: str, pairs: list[tuple[str, str]], last: float) -> None:
        pairs = [p for p in pairs if p not in self.net.cut]
        self.faults += 1
        self.active_faults += 1
        self.note(f"FAULT {what} for {last:.3f}s")
        self.net.cut_links(pairs)
        await asyncio.sleep(last)
        self.net.heal(pairs)
        self.note(f"FAULT healed: {what}")
        self.active_faults -= 1

    async def _slow(self, name: str, extra: float, last: float) -> None:
        if name in self.net.slow:
            return
        self.faults += 1
        self.active_faults += 1
        self.note(f"FAULT {name} slow (+{extra * 1000:.0f} ms a message) for {last:.3f}s")
        self.net.slow[name] = extra
        await asyncio.sleep(last)
        del self.net.slow[name]
        self.note(f"FAULT {name} fast again")
        self.active_faults -= 1

    # -- the run -----------------------------------------------------------------

    async def main(self) -> None:
        for w in self.witnesses:
            w.start()
        for n in self.nodes:
            n.start()
        await asyncio.sleep(0.05)
        await self.setup_bucket()
        stop = asyncio.Event()
        nemesis = self.loop.create_task(self.nemesis(stop)) if self.params.faults else None
        await asyncio.gather(*(self.client(c) for c in range(self.n_clients)))
        stop.set()
        if nemesis is not None:
            await nemesis
        self.note("all faults healed; every process up")
        procs: list[SimNode | SimWitness] = [*self.witnesses, *self.nodes]
        for p in procs:
            if not p.up:
                p.start()
        await asyncio.sleep(2.0)  # hinted handoff has a round or more
        for cid in range(self.n_clients):
            for key in self.keys:
                node = self.nodes[(cid + self.keys.index(key)) % len(self.nodes)]
                for _ in range(5):
                    if await self.get(cid, node, key):
                        break
                    await asyncio.sleep(0.5)
                else:
                    self.violations.append(f"final read of {key} via {node.name} kept failing")
        if self.versioned:
            await self.check_versions()
        if self.deleted:
            await self.check_deleted_versions()
        if self.edited:
            await self.read_edits()

    async def setup_bucket(self) -> None:
        coord = self.nodes[0].coord
        assert coord is not None
        token = OWNER.set(self.nodes[0].name)
        try:
            # Retried: a message stalled past a short deadline (no fault needed)
            # can fail an attempt; one that took effect makes the next refuse.
            # So does a home that could not hear its AZ whole (nothing written).
            for attempt in range(10):
                try:
                    if attempt == 0 or await self._bucket_missing(coord):
                        await coord.buckets.create_bucket(BUCKET)
                    if self.versioned:
                        await coord.put_bucket_versioning(BUCKET, "Enabled")
                    break
                except (*EXPECTED, errors.ConditionalRequestConflict) as exc:
                    self.note(f"setup: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.5)
        finally:
            OWNER.reset(token)
        self.note(f"bucket {BUCKET} (versioned: {self.versioned}), keys {self.keys}")

    @staticmethod
    async def _bucket_missing(coord: Any) -> bool:
        try:
            await coord.buckets.require_bucket(BUCKET)
        except errors.NoSuchBucket:
            return True
        return False

    async def check_versions(self) -> None:
        """Every acknowledged version is on a node of each of its key's AZs,
        and no node holds a version of a refused conditional PUT (a listing
        would show it: the call took effect after all)."""
        placer = Placer(self.cfg)
        for n in self.nodes:
            assert n.store is not None
            for key in self.keys:
                held, _ = await n.store.read_versions(BUCKET, key, None, False, 100_000)
                for v in held:
                    if v.request_id in self.refused and not v.delete_marker:
                        self.violations.append(
                            f"{n.name} holds version {v.version_id} of {key}, written by the "
                            f"refused conditional PUT {v.request_id!r}"
                        )
        for key, vid in self.acked_versions:
            if (key, vid) in self.delete_tried:
                continue  # its DELETE may have taken effect
            stamp = Stamp.from_version_id(vid)
            for azr in placer.place(BUCKET, key).azs:
                held = False
                for spec in azr.nodes:
                    store = self.node(spec.name).store
                    assert store is not None
                    found, _ = await store.read_versions(BUCKET, key, stamp, False, 1)
                    held = held or any(v.vstamp == stamp for v in found)
                if not held:
                    self.violations.append(
                        f"acknowledged version {vid} of {key} is on no node of {azr.az}"
                    )

    def check(self) -> None:
        verdict = lin.check(self.history)
        if not verdict.ok:
            ops = "\n    ".join(
                f"c{o.client} {o.kind} {o.value!r} [{o.invoked:.6f}, {o.completed:.6f}]"
                f"{'' if o.ok else ' (outcome unknown)'}"
                for o in sorted(verdict.ops, key=lambda o: o.invoked)
            )
            self.violations.append(
                f"not linearizable: {verdict.explanation}; not placed:\n    {ops}"
            )


def _config(
    root: Path, witness_max_keys: int, mutant: str, timeouts: dict[str, float]
) -> ClusterConfig:
    nodes = []
    for a, az in enumerate(("az-a", "az-b", "az-c")):
        for i in range(2):
            n = a * 2 + i
            nodes.append(
                {
                    "name": f"{az[-1]}{i + 1}",
                    "id": n + 1,
                    "az": az,
                    "grpc": f"10.0.0.{n + 1}:7100",
                    "metrics": f"10.0.0.{n + 1}:9100",
                }
            )
    witnesses = [
        {
            "name": f"w{i + 1}",
            "group": 0,
            "grpc": f"10.0.1.{i + 1}:7200",
            "metrics": f"10.0.1.{i + 1}:9200",
        }
        for i in range(3)
    ]
    node: dict[str, Any] = {
        # The store is not fsynced: a crash here keeps what RocksDB wrote
        # (as SIGKILL keeps the page cache); power loss is not simulated.
        "unsafe_no_fsync": True,
        "block_cache_bytes": 1 << 20,
        "read_threads": 1,
        "replica_timeout_s": timeouts["replica_timeout_s"],
    }
    if mutant:
        node[MUTANTS[mutant]] = True
    raw = {
        "cluster": {"name": "sim", "id": 1, "data_dir": str(root), "max_clock_skew_ms": 60_000},
        "node": node,
        "witness": {
            "max_keys": witness_max_keys,
            "timeout_s": timeouts["witness_timeout_s"],
            "check_hedge_s": timeouts["check_hedge_s"],
        },
        "tls": {"insecure": True},
        "auth": {"enabled": False},
        "nodes": nodes,
        "witnesses": witnesses,
    }
    return config.parse(raw, env={})


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _scratch() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="tristore-sim-", dir=base))


@contextlib.contextmanager
def _quiet_logs(sim: Sim) -> Any:
    handler = _TraceLog(sim)
    saved = []
    for name in ("node", "witness", "tristore", "asyncio"):
        lg = logging.getLogger(name)
        saved.append((lg, lg.level, lg.propagate))
        lg.setLevel(logging.INFO)
        lg.propagate = False
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def run(seed: int, params: Params | None = None) -> Result:
    """Run seed ``seed``; the same seed (and params) gives the same result."""
    params = params or Params()
    if params.tags and params.edits:
        raise ValueError("--tags and --edits both write a version's tags: run one at a time")
    started = time.perf_counter()
    root = _scratch()
    sim = Sim(seed, params, root)
    loop = sim.loop
    try:
        with _quiet_logs(sim):
            try:
                loop.run_until_complete(sim.main())
            except Deadlock as exc:
                sim.violations.append(f"deadlock: {exc}")
            sim.check()
            digest = sim.digest.copy()
            digest.update(sim.net.digest.digest())
            _shutdown(sim)
    finally:
        for n in sim.nodes:
            with contextlib.suppress(Exception):
                n.close()
        loop.close()
        shutil.rmtree(root, ignore_errors=True)
    return Result(
        seed=seed,
        ok=not sim.violations,
        violations=sim.violations,
        digest=digest.hexdigest(),
        ops=sim.ops,
        virtual_s=loop.now,
        wall_s=time.perf_counter() - started,
        messages=sim.net.messages,
        faults=sim.faults,
        trace=sim.trace,
        history=sim.history,
    )


def _shutdown(sim: Sim) -> None:
    """Cancel what still runs (background loops, pipes) and let it end."""
    loop = sim.loop
    for _ in range(3):
        tasks = sorted((t for t in asyncio.all_tasks(loop) if not t.done()), key=_task_order)
        if not tasks:
            break
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Deadlock):
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    with contextlib.suppress(Deadlock):
        loop.run_until_complete(loop.shutdown_asyncgens())
