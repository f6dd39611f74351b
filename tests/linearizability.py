"""A linearizability checker for per-key register histories (Wing & Gong, with
Lowe's memoization of visited states).

A history is a list of :class:`Op`: a write of a value (``None`` is a delete)
or a read that returned a value (``None``: the key was absent), each with the
times it was invoked and completed. A write whose outcome is unknown (the
client saw an error or a timeout) may have taken effect at any point after its
invocation, or never: it is given an infinite completion time and is allowed to
be left out. A write whose call the client's SDK sent more than once (a retry)
may take effect at each attempt (a plain PUT or DELETE is at least once, as in
S3): beside the call's own operation it has an :attr:`Op.echo`, the earlier
attempt, which may take effect at any point of the call or not at all. The
history is linearizable if some order of the operations
respects real time (an operation that completed before another was invoked
comes first) and makes every read return the latest write before it.

Keys are independent registers, so each key is checked on its own
(linearizability is compositional).

A key of a versioned bucket whose history has :data:`REMOVE` operations (a
DELETE of one version by its id) is checked as its list of versions instead:
a write appends a version (``None``: a delete marker), a remove takes out
the version written with its value (values are unique to a write), and a
read returns the newest version left (``None`` when there is none or it is
a delete marker). Without removes that is the register above.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import cast

WRITE = "write"
READ = "read"
#: A DELETE of the version a write of ``value`` made (by its version id).
REMOVE = "remove"
#: A write's :attr:`Op.expect`: none (an unconditional write), and "the key
#: holds some value" (If-Match ``*``).
UNCONDITIONAL = "<unconditional>"
PRESENT = "<present>"


@dataclass(frozen=True)
class Op:
    key: str
    kind: str  # WRITE or READ
    value: Hashable | None
    invoked: float
    completed: float = math.inf
    #: False for a write whose outcome the client does not know.
    ok: bool = True
    client: int = 0
    ident: int = field(default=0, compare=False)
    #: A conditional write (a DELETE with If-Match): it takes effect only
    #: where the key holds this value (:data:`PRESENT`: any value).
    expect: Hashable | None = UNCONDITIONAL
    #: An earlier attempt of a write whose call was retried: it may have taken
    #: effect within the call (invoked..completed) as well, or not at all.
    echo: bool = False


def echo_of(op: Op) -> Op:
    """The earlier attempt of ``op``'s call, which the client sent again."""
    return dataclasses.replace(op, echo=True)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    key: str = ""
    #: The operations of the key that could not be linearized, for the report.
    ops: tuple[Op, ...] = ()
    explanation: str = ""


def check(
    history: Iterable[Op], initial: Hashable | None = None, max_states: int = 2_000_000
) -> Verdict:
    """Check every key; the first key that fails decides the verdict."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        if op.kind == READ and not op.ok:
            continue  # a failed read returned nothing: it constrains nothing
        by_key[op.key].append(op)
    for key, ops in sorted(by_key.items()):
        if any(o.kind == REMOVE for o in ops):
            verdict = check_key(key, ops, (), max_states, versions=True)
        else:
            verdict = check_key(key, ops, initial, max_states)
        if not verdict.ok:
            return verdict
    return Verdict(True)


def _settle_unknown_writes(ops: list[Op]) -> list[Op]:
    """Unknown writes of a value no other write has: if no read returned it, it
    is left out (linearizing it can only add constraints); if one did, it took
    effect, before the first read that returned it completed. Either way it no
    longer stays pending through the rest of the history, which is what makes
    long histories with many failed writes (node kills) expensive to check.

    Not left out in a history with conditional writes: one that goes only
    where the key holds a value can need it."""
    conditional = any(o.expect != UNCONDITIONAL for o in ops)
    writers: dict[Hashable | None, int] = defaultdict(int)
    first_read: dict[Hashable | None, float] = {}
    for o in ops:
        if o.kind == WRITE:
            writers[o.value] += 1
        elif o.kind == READ and o.value is not None:
            # (A REMOVE names a value too, but returns nothing: it saw nothing.)
            first_read[o.value] = min(first_read.get(o.value, math.inf), o.completed)
    out: list[Op] = []
    for o in ops:
        if o.kind == WRITE and not o.ok and o.value is not None and writers[o.value] == 1:
            seen = first_read.get(o.value)
            if seen is None:
                if conditional:
                    out.append(o)  # stays pending: it may have taken effect, or not
                continue
            o = Op(o.key, o.kind, o.value, o.invoked, seen, True, o.client, o.ident, o.expect)
        out.append(o)
    return out


def _step(state: Hashable | None, op: Op, versions: bool) -> tuple[bool, Hashable | None]:
    """Whether ``op`` can go next from ``state``, and the state after it: the
    register's value, or (``versions``) the tuple of the key's versions'
    values, oldest first."""
    if not versions:
        if op.kind == WRITE:
            return _holds(state, op.expect), op.value
        return op.value == state, state
    held = cast(tuple[Hashable | None, ...], state)
    if op.kind == WRITE:
        return _holds(held[-1] if held else None, op.expect), (*held, op.value)
    if op.kind == REMOVE:
        # A version already gone (or never made: its write failed) is no error.
        return True, tuple(v for v in held if v is None or v != op.value)
    return op.value == (held[-1] if held else None), state


def _holds(current: Hashable | None, expect: Hashable | None) -> bool:
    """Whether a write conditional on ``expect`` may go where the key reads ``current``."""
    if expect == UNCONDITIONAL:
        return True
    if expect == PRESENT:
        return current is not None
    return current == expect


def check_key(
    key: str, ops: list[Op], initial: Hashable | None, max_states: int, versions: bool = False
) -> Verdict:
    ops = [
        Op(
            o.key,
            o.kind,
            o.value,
            o.invoked,
            o.completed if o.ok else math.inf,
            o.ok,
            o.client,
            i,
            o.expect,
            o.echo,
        )
        for i, o in enumerate(sorted(_settle_unknown_writes(ops), key=lambda o: o.invoked))
    ]
    n = len(ops)
    # Sets of operations are bitmasks (an int, bit i for ops[i]): a state of a
    # long history costs n/8 bytes, not a frozenset of n ints.
    # Operations that must all be linearized: everything except unknown writes
    # and the earlier attempts of retried calls.
    required = sum(1 << i for i, o in enumerate(ops) if o.ok and not o.echo)
    everything = (1 << n) - 1
    seen: set[tuple[int, Hashable | None]] = set()
    # Depth-first search over (linearized set, register value).
    stack: list[tuple[int, Hashable | None]] = [(0, initial)]
    best = 0
    while stack:
        done, value = stack.pop()
        if (required & ~done) == 0:
            return Verdict(True, key)
        if done.bit_count() > best.bit_count():
            best = done
        if (done, value) in seen:
            continue
        seen.add((done, value))
        if len(seen) > max_states:
            raise RuntimeError(f"history of key {key!r} is too large to check ({n} operations)")
        # Only operations invoked before every pending op's completion can go
        # next. Ops are sorted by invocation and complete after they are
        # invoked, so the pending ops from the first one on, up to the first
        # invoked after the smallest completion seen so far, are all there is
        # to look at (not the whole history: a state costs its window). The
        # pending ops are visited bit by bit, lowest first, skipping the done
        # ones at once: a write of unknown outcome stays pending to the end,
        # and stepping over every done op after it made each state cost the
        # length of the history.
        horizon = math.inf
        pending = everything & ~done
        while pending:
            low = pending & -pending
            op = ops[low.bit_length() - 1]
            if op.invoked > horizon:
                break  # sorted by invocation: no later op can go first either
            horizon = min(horizon, op.completed)
            ok, after = _step(value, op, versions)
            if ok:
                stack.append((done | low, after))
            pending ^= low
    unplaced = required & ~best
    missing = tuple(ops[i] for i in range(n) if unplaced >> i & 1)
    return Verdict(
        False,
        key,
        missing,
        f"key {key!r}: no order of its {n} operations respects real time and "
        f"{'versions' if versions else 'register'} semantics; the longest valid prefix "
        f"linearized {best.bit_count()} of them",
    )
