"""A model of the witness / cache / write-back protocol for one key, explored
by Hypothesis against a reference model (DESIGN.md §3, issue 4).

The model follows node/protocol.py (with node/quorum.py) step by step, at the granularity where
interleavings matter: a write takes its stamp above the key's floor (witness
majority, or the replicas when a member does not know the key), commits AZ by
AZ (last writer wins; never re-stamped), then records at a witness majority,
then is acknowledged; writes can be abandoned half way (unfinished
writes); witnesses can restart at any moment (and know nothing) or forget
the key to stay within their size (eviction: same incarnation, and a floor
below which a record of a key they do not know is not taken); coordinators
keep caches. A read is one atomic step of the protocol: majority check, cache
if at least the witness's stamp, else the newest replica, finished (written
back and recorded) when newer than the witness or when the witness does not
know the key.

The reference model is simply the newest acknowledged stamp and the newest
stamp any read returned: every read must return at least both (read-after-
write, no flicker).
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

pytestmark = pytest.mark.unit

Stamp = tuple[int, int]  # (clock value, writer id): unique and totally ordered
NONE: Stamp = (0, 0)
AZS = 3
WITNESSES = 3
COORDINATORS = 2
MAJORITIES = [(0, 1), (0, 2), (1, 2)]


class PendingWrite:
    def __init__(self, stamp: Stamp, coordinator: int, fence: tuple[int, ...]) -> None:
        self.stamp = stamp
        self.coordinator = coordinator
        #: The witnesses' incarnations when the write began: a record under an
        #: older one is refused (node/witness_client.py).
        self.fence = fence
        #: What it records: its own stamp, or a newer one it finished on a re-fence.
        self.record_stamp = stamp
        self.committed: set[int] = set()
        self.recorded: set[int] = set()


class Protocol(RuleBasedStateMachine):
    #: Whether a witness keeps the floor of what it evicted (witness/table.py);
    #: without it, a late record of an older stamp brings a forgotten key back
    #: at that stamp, and a reader trusts its stale cache.
    eviction_floor = True
    #: Whether a witness refuses a record meant for an earlier incarnation
    #: (node/witness_client.py, witness/table.py).
    incarnation_fence = True

    def __init__(self) -> None:
        super().__init__()
        self.replicas: list[Stamp] = [NONE] * AZS
        self.witness: list[Stamp | None] = [None] * WITNESSES  # None: unknown
        self.floor: list[Stamp] = [NONE] * WITNESSES  # the newest stamp it evicted
        self.incarnation: list[int] = [0] * WITNESSES
        self.cache: list[Stamp | None] = [None] * COORDINATORS
        self.pending: list[PendingWrite] = []
        self.next_uid = 1
        # The reference model.
        self.acked: Stamp = NONE
        self.observed: Stamp = NONE

    # -- writes ------------------------------------------------------------

    @rule(
        coordinator=st.integers(0, COORDINATORS - 1),
        clock=st.integers(1, 8),
        check_at=st.sampled_from(MAJORITIES),
    )
    def start_write(self, coordinator: int, clock: int, check_at: tuple[int, int]) -> None:
        """A write learns the key's floor (the witness majority's stamp, or the
        replicas' newest when a member does not know the key) and takes a stamp
        above it and above whatever its (possibly skewed) clock gives."""
        if len(self.pending) < 3:
            answers = [self.witness[i] for i in check_at]
            if any(a is None for a in answers):
                floor = max(self.replicas)
            else:
                floor = max(a for a in answers if a is not None)
            stamp = (max(clock, floor[0] + 1), self.next_uid)
            self.pending.append(PendingWrite(stamp, coordinator, tuple(self.incarnation)))
            self.next_uid += 1

    @precondition(lambda self: self.pending)
    @rule(which=st.integers(0, 2), az=st.integers(0, AZS - 1))
    def commit_to_az(self, which: int, az: int) -> None:
        """Last writer wins: a replica holding a newer (concurrent) write keeps
        it; the write is stored there as an older version and not stamped again."""
        w = self.pending[which % len(self.pending)]
        self.replicas[az] = max(self.replicas[az], w.stamp)
        w.committed.add(az)

    @precondition(lambda self: any(len(w.committed) == AZS for w in self.pending))
    @rule(which=st.integers(0, 2), witness=st.integers(0, WITNESSES - 1))
    def record(self, which: int, witness: int) -> None:
        ready = [w for w in self.pending if len(w.committed) == AZS]
        w = ready[which % len(ready)]
        if self.incarnation_fence and w.fence[witness] != self.incarnation[witness]:
            return  # refused: the witness restarted since the write began
        self._witness_record(witness, w.record_stamp)
        w.recorded.add(witness)

    def _witness_record(self, witness: int, stamp: Stamp) -> None:
        """The witness keeps the larger stamp; a key it does not know only
        at or above its eviction floor (else it stays unknown: "ask the nodes")."""
        held = self.witness[witness]
        if held is None:
            if not self.eviction_floor or stamp >= self.floor[witness]:
                self.witness[witness] = stamp
        else:
            self.witness[witness] = max(held, stamp)

    @precondition(lambda self: any(len(w.committed) == AZS for w in self.pending))
    @rule(which=st.integers(0, 2))
    def refence(self, which: int) -> None:
        """Refused by restarted witnesses: take a new fence, read the replicas,
        finish the newest they hold (write it back) and record that instead."""
        ready = [w for w in self.pending if len(w.committed) == AZS]
        w = ready[which % len(ready)]
        newest = max(self.replicas)
        self.replicas = [max(r, newest) for r in self.replicas]
        w.fence = tuple(self.incarnation)
        w.record_stamp = max(w.stamp, newest)
        w.recorded = set()

    @precondition(lambda self: any(len(w.recorded) * 2 > WITNESSES for w in self.pending))
    @rule(which=st.integers(0, 2))
    def acknowledge(self, which: int) -> None:
        ready = [w for w in self.pending if len(w.recorded) * 2 > WITNESSES]
        w = ready[which % len(ready)]
        self.pending.remove(w)
        cached = self.cache[w.coordinator]
        self.cache[w.coordinator] = (
            w.record_stamp if cached is None else max(cached, w.record_stamp)
        )
        self.acked = max(self.acked, w.stamp)

    @precondition(lambda self: self.pending)
    @rule(which=st.integers(0, 2))
    def abandon(self, which: int) -> None:
        """The writer's coordinator died: whatever it committed stays, unfinished."""
        self.pending.pop(which % len(self.pending))

    # -- faults ----------------------------------------------------------------

    @rule(witness=st.integers(0, WITNESSES - 1))
    def restart_witness(self, witness: int) -> None:
        self.witness[witness] = None
        self.incarnation[witness] += 1

    @rule(witness=st.integers(0, WITNESSES - 1))
    def evict(self, witness: int) -> None:
        """The witness forgets the key to stay within max_keys: same incarnation."""
        held = self.witness[witness]
        if held is not None:
            self.floor[witness] = max(self.floor[witness], held)
            self.witness[witness] = None

    @rule(coordinator=st.integers(0, COORDINATORS - 1))
    def restart_coordinator(self, coordinator: int) -> None:
        self.cache[coordinator] = None

    # -- reads -------------------------------------------------------------------

    @rule(
        coordinator=st.integers(0, COORDINATORS - 1),
        check_at=st.sampled_from(MAJORITIES),
        record_at=st.sampled_from(MAJORITIES),
    )
    def read(self, coordinator: int, check_at: tuple[int, int], record_at: tuple[int, int]) -> None:
        self._read(coordinator, check_at, record_at)

    def _read(
        self, coordinator: int, check_at: tuple[int, int], record_at: tuple[int, int]
    ) -> Stamp | None:
        """Protocol.read: the stamp returned, or None (ServiceUnavailable)."""
        answers = [self.witness[i] for i in check_at]
        w = None if any(a is None for a in answers) else max(a for a in answers if a is not None)
        cached = self.cache[coordinator]
        if cached is not None and w is not None and cached >= w:
            self._returned(cached)
            return cached
        best = max(self.replicas)
        if best == NONE:
            if w is None:
                self._returned(NONE)
                return NONE
            return None  # the node answers ServiceUnavailable: no value returned
        if w is not None and best < w:
            return None  # ServiceUnavailable
        if w is None or best > w:
            # Finish it: write back to every AZ, then record at a majority.
            self.replicas = [max(r, best) for r in self.replicas]
            for i in record_at:
                self._witness_record(i, best)
        self.cache[coordinator] = best if cached is None else max(cached, best)
        self._returned(best)
        return best

    def _returned(self, stamp: Stamp) -> None:
        assert stamp >= self.acked, f"stale read: {stamp} after {self.acked} was acknowledged"
        assert stamp >= self.observed, f"flicker: {stamp} after {self.observed} was returned"
        self.observed = stamp

    @invariant()
    def acknowledged_is_durable(self) -> None:
        assert all(r >= self.acked for r in self.replicas)


TestProtocol = Protocol.TestCase
TestProtocol.settings = settings(max_examples=1000, stateful_step_count=30, deadline=None)


def test_the_model_finds_the_bug_when_reads_skip_the_witness() -> None:
    """The model is sharp enough to catch the broken mode the real cluster has
    (``unsafe_skip_witness``): a coordinator serves its cached A after B, which
    another coordinator wrote, was acknowledged. (A derandomized search found
    it on one machine and not under pytest-xdist on the same one: the trace is
    what the test rests on.)"""

    class Broken(Protocol):
        @rule(coordinator=st.integers(0, COORDINATORS - 1))
        def read_from_cache(self, coordinator: int) -> None:
            cached = self.cache[coordinator]
            if cached is not None:
                self._returned(cached)

    m = Broken()
    for coordinator, clock in ((0, 1), (1, 5)):  # A through 0, then B through 1
        m.start_write(coordinator=coordinator, clock=clock, check_at=(0, 1))
        for az in range(AZS):
            m.commit_to_az(which=0, az=az)
        m.record(which=0, witness=0)
        m.record(which=0, witness=1)
        m.acknowledge(which=0)
    with pytest.raises(AssertionError, match="stale read"):
        m.read_from_cache(coordinator=0)
    Protocol.read(m, coordinator=0, check_at=(1, 2), record_at=(1, 2))  # the real read: B
    assert m.observed == m.acked


def _late_record_after_eviction(m: Protocol, restart: bool = False) -> None:
    """Write A is committed everywhere but its records are late; a reader
    finishes it (caches it); write B supersedes it and is acknowledged; two
    witnesses evict the key (or restart); then A's late records arrive, and
    the reader with A in its cache checks those two witnesses."""
    m.start_write(coordinator=0, clock=1, check_at=(0, 1))  # A
    for az in range(AZS):
        m.commit_to_az(which=0, az=az)
    m.read(coordinator=0, check_at=(0, 1), record_at=(0, 1))  # A seen and cached
    m.start_write(coordinator=1, clock=5, check_at=(0, 1))  # B, above A
    for az in range(AZS):
        m.commit_to_az(which=1, az=az)
    m.record(which=1, witness=0)
    m.record(which=1, witness=1)
    m.acknowledge(which=0)  # B acknowledged
    for w in (0, 1):
        if restart:
            m.restart_witness(witness=w)
        else:
            m.evict(witness=w)
    m.record(which=0, witness=0)  # A's late records
    m.record(which=0, witness=1)
    m.read(coordinator=0, check_at=(0, 1), record_at=(0, 1))


def test_a_late_record_after_an_eviction_does_not_bring_back_an_older_stamp() -> None:
    m = Protocol()
    _late_record_after_eviction(m)  # the read returns B
    assert m.witness[0] == m.witness[1] == m.acked
    m.acknowledged_is_durable()


def test_the_model_finds_the_stale_read_without_the_eviction_floor() -> None:
    """witness/table.py before the floor: an evicted key kept the incarnation,
    so the late record was taken and the reader trusted its stale cache."""

    class NoFloor(Protocol):
        eviction_floor = False

    with pytest.raises(AssertionError, match="stale read"):
        _late_record_after_eviction(NoFloor())


def test_the_model_finds_the_stale_read_without_the_incarnation_fence() -> None:
    """The fence's own mutant: a restarted witness that takes a record meant
    for its previous life answers A, and the reader trusts its stale cache;
    with the fence, the same trace reads B."""

    class NoFence(Protocol):
        incarnation_fence = False

    with pytest.raises(AssertionError, match="stale read"):
        _late_record_after_eviction(NoFence(), restart=True)
    m = Protocol()
    _late_record_after_eviction(m, restart=True)
    assert m.observed == m.acked


# -- conditional writes (If-Match / If-None-Match, bucket updates) -----------------


class CondWrite:
    """A conditional write: the key's first AZ (AZ 0) serializes it against
    ``expect``, the current stamp its precondition read saw. A try that some
    other AZ holds something newer than is stamped again, conditional on the
    try before it (node/protocol.py)."""

    def __init__(
        self, expect: Stamp, stamp: Stamp, coordinator: int, fence: tuple[int, ...], call: int
    ) -> None:
        self.call = call  # the request id, the same in every attempt
        self.first_expect = expect  # what the call's precondition read saw
        self.gone = False  # the client's attempt failed; its coordinator may go on
        self.expect = expect
        self.stamp = stamp
        self.coordinator = coordinator
        self.fence = fence
        self.tries: list[Stamp] = []  # stamps the first AZ took, in order
        self.others: set[int] = set()  # AZs 1.. that answered for this try
        self.newer: list[Stamp] = []
        self.finishing = False  # committed everywhere: recording, then acknowledged
        self.recorded: set[int] = set()


class ConditionalProtocol(Protocol):
    """The protocol with conditional writes beside the plain ones. What matters
    is that a refusal is true: a conditional write that is refused never
    becomes visible, before or after the refusal."""

    #: What the node does when the first AZ refuses a try after an earlier try
    #: of the same write was taken there. ``finish``: the earlier try happened
    #: (the fix); ``refuse``: the old behaviour, a false refusal.
    on_late_conflict = "finish"

    #: What a resent call (its earlier attempt failed without saying whether
    #: it took effect) does before its precondition (node/objects.py). With
    #: ``resend_lookup`` it looks for its request id among the key's versions
    #: (a versioned bucket keeps them all); ``resend_reads`` takes the current
    #: version by a linearizable read, which finishes what it returns. Without
    #: the lookup a retry refuses a call that took effect; with a plain look
    #: at the replicas, a refused call's earlier try can still take effect.
    resend_lookup = True
    resend_reads = True

    def __init__(self) -> None:
        super().__init__()
        self.conds: list[CondWrite] = []
        self.refused: set[Stamp] = set()
        self.returned: set[Stamp] = set()
        #: Calls whose try the first AZ took, and calls a resend refused.
        self.took_effect: set[int] = set()
        self.refused_calls: set[int] = set()
        #: Calls finished and recorded whose client was not told.
        self.lost: list[CondWrite] = []

    @rule(coordinator=st.integers(0, COORDINATORS - 1), clock=st.integers(1, 8))
    def start_conditional(self, coordinator: int, clock: int) -> None:
        """Its precondition read saw the newest stamp; it takes a stamp above."""
        if len(self.conds) < 2:
            expect = max(self.replicas)
            stamp = (max(clock, expect[0] + 1), self.next_uid)
            self.next_uid += 1
            fence = tuple(self.incarnation)
            self.conds.append(CondWrite(expect, stamp, coordinator, fence, self.next_uid))

    @precondition(
        lambda self: (
            any(not c.finishing and not c.tries for c in self.conds)
            or any(not c.finishing and c.tries and c.tries[-1] != c.stamp for c in self.conds)
        )
    )
    @rule(which=st.integers(0, 1))
    def conditional_at_first_az(self, which: int) -> None:
        waiting = [
            c for c in self.conds if not c.finishing and (not c.tries or c.tries[-1] != c.stamp)
        ]
        c = waiting[which % len(waiting)]
        if self.replicas[0] > c.expect:
            if not c.tries:
                self.conds.remove(c)  # refused before anything was written
                self.refused.add(c.stamp)
                return
            if self.on_late_conflict == "refuse":
                self.conds.remove(c)
                assert not (set(c.tries) & self.returned), "a refused write was seen"
                self.refused.update(c.tries)
                return
            c.stamp = c.tries[-1]  # the earlier try happened: finish it
            self.replicas = [max(r, c.stamp) for r in self.replicas]  # merge commits
            c.finishing = True
            return
        self.replicas[0] = max(self.replicas[0], c.stamp)
        c.tries.append(c.stamp)
        self.took_effect.add(c.call)
        c.others = set()
        c.newer = []

    @precondition(
        lambda self: any(c.tries and c.tries[-1] == c.stamp and not c.finishing for c in self.conds)
    )
    @rule(which=st.integers(0, 1), az=st.integers(1, AZS - 1))
    def conditional_at_other_az(self, which: int, az: int) -> None:
        going = [c for c in self.conds if c.tries and c.tries[-1] == c.stamp and not c.finishing]
        c = going[which % len(going)]
        if az in c.others:
            return
        c.others.add(az)
        if self.replicas[az] > c.stamp:
            c.newer.append(self.replicas[az])
        else:
            self.replicas[az] = c.stamp
        if len(c.others) == AZS - 1:
            if c.newer and len(c.tries) < 4:
                # Stamped again above what it met, conditional on this try.
                c.expect = c.stamp
                c.stamp = (max(c.newer)[0] + 1, self.next_uid)
                self.next_uid += 1
            else:
                c.finishing = True

    @precondition(lambda self: any(c.finishing for c in self.conds))
    @rule(which=st.integers(0, 1), at=st.sampled_from(MAJORITIES))
    def conditional_acknowledged(self, which: int, at: tuple[int, int]) -> None:
        ready = [c for c in self.conds if c.finishing]
        c = ready[which % len(ready)]
        record = c.stamp
        if any(c.fence[i] != self.incarnation[i] for i in at):
            # Refused by a restarted witness: finish the newest the replicas
            # hold and record that under a new fence (Protocol.confirm).
            record = max(c.stamp, *self.replicas)
            self.replicas = [max(r, record) for r in self.replicas]
        for i in at:
            self._witness_record(i, record)
        self.conds.remove(c)
        assert c.stamp not in self.refused
        if c.gone:
            self.lost.append(c)  # done, but the client was not told: it resends
            return
        self.acked = max(self.acked, c.stamp)

    @precondition(lambda self: self.conds)
    @rule(which=st.integers(0, 1))
    def conditional_abandoned(self, which: int) -> None:
        """Its coordinator died: the outcome is unknown (neither refused nor acknowledged)."""
        self.conds.pop(which % len(self.conds))

    @precondition(lambda self: any(not c.gone for c in self.conds))
    @rule(which=st.integers(0, 1))
    def reply_lost(self, which: int) -> None:
        """The client's attempt fails (a timeout, a dropped connection) without
        saying whether it took effect; its coordinator goes on."""
        going = [c for c in self.conds if not c.gone]
        going[which % len(going)].gone = True

    @precondition(lambda self: self.lost or any(c.gone for c in self.conds))
    @rule(
        which=st.integers(0, 2),
        coordinator=st.integers(0, COORDINATORS - 1),
        check_at=st.sampled_from(MAJORITIES),
        record_at=st.sampled_from(MAJORITIES),
    )
    def resend(
        self, which: int, coordinator: int, check_at: tuple[int, int], record_at: tuple[int, int]
    ) -> None:
        """The client sends the call again, flagged as a resend, to any node."""
        calls = self.lost + [c for c in self.conds if c.gone]
        c = calls[which % len(calls)]
        if self.resend_reads:
            current = self._read(coordinator, check_at, record_at)
            if current is None:
                return  # ServiceUnavailable: the client will try again
        else:
            current = max(self.replicas)
        if self.resend_lookup and c.call in self.took_effect:
            # Found among the versions (spread to every AZ): answered success.
            if c in self.lost:
                self.lost.remove(c)
            else:
                self.conds.remove(c)  # its coordinator may stop now
            return
        if current > c.first_expect:
            # The precondition fails: refused. Its coordinator, if still going,
            # must never get a try of it taken now.
            self.refused_calls.add(c.call)
            self.refused.update([*c.tries, c.stamp])
            if c in self.lost:
                self.lost.remove(c)
            return
        c.gone = False  # a fresh attempt: the call goes on

    @invariant()
    def a_refused_call_never_took_effect(self) -> None:
        assert not (self.refused_calls & self.took_effect), "a refused call took effect"

    def _returned(self, stamp: Stamp) -> None:
        assert stamp not in self.refused, f"{stamp} was refused, then read"
        self.returned.add(stamp)
        super()._returned(stamp)


TestConditionalProtocol = ConditionalProtocol.TestCase
TestConditionalProtocol.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)


def _race_a_conditional_write(m: ConditionalProtocol) -> None:
    """The interleaving of a false refusal, step by step: a reader sees a
    conditional write's first try, a plain write then beats its second try to
    the first AZ."""
    m.start_conditional(coordinator=0, clock=1)
    m.conditional_at_first_az(which=0)  # try 1 taken by the first AZ
    m.read(coordinator=1, check_at=(0, 1), record_at=(0, 1))  # ... and seen, finished
    m.start_write(coordinator=1, clock=5, check_at=(0, 1))  # a plain write above it
    m.commit_to_az(which=0, az=1)
    m.conditional_at_other_az(which=0, az=1)  # meets the plain write: newer
    m.conditional_at_other_az(which=0, az=2)  # so it is stamped again
    m.commit_to_az(which=0, az=0)  # the plain write gets to the first AZ first
    m.conditional_at_first_az(which=0)  # try 2 is refused there


def test_a_conditional_write_refused_after_its_first_try_was_seen_is_finished() -> None:
    m = ConditionalProtocol()
    _race_a_conditional_write(m)
    assert m.conds and m.conds[0].finishing  # try 1 is finished, not refused
    m.conditional_acknowledged(which=0, at=(0, 1))
    m.read(coordinator=0, check_at=(0, 2), record_at=(0, 1))
    m.acknowledged_is_durable()


def test_the_model_finds_false_refusals_of_conditional_writes() -> None:
    """Refusing at that point (the behaviour before the fix) is caught: a
    reader had seen the try."""

    class Refusing(ConditionalProtocol):
        on_late_conflict = "refuse"

    with pytest.raises(AssertionError, match="a refused write was seen"):
        _race_a_conditional_write(Refusing())


# -- resent conditional writes (request ids) ---------------------------------------


def _resend_after_a_lost_reply(m: ConditionalProtocol) -> None:
    """A conditional create takes effect at the first AZ, its reply is lost, a
    plain write replaces it, and the client resends the create."""
    m.start_conditional(coordinator=0, clock=1)
    m.conditional_at_first_az(which=0)
    m.reply_lost(which=0)
    m.start_write(coordinator=1, clock=5, check_at=(0, 1))
    for az in range(AZS):
        m.commit_to_az(which=0, az=az)
    m.record(which=0, witness=0)
    m.record(which=0, witness=1)
    m.acknowledge(which=0)
    m.resend(which=0, coordinator=1, check_at=(0, 1), record_at=(0, 1))
    m.a_refused_call_never_took_effect()


def test_a_resend_finds_its_earlier_attempt() -> None:
    m = ConditionalProtocol()
    _resend_after_a_lost_reply(m)
    assert not m.refused_calls and not m.conds  # answered success


def test_the_model_finds_a_resend_refused_after_it_took_effect() -> None:
    class NoLookup(ConditionalProtocol):
        resend_lookup = False

    with pytest.raises(AssertionError, match="a refused call took effect"):
        _resend_after_a_lost_reply(NoLookup())


def _resend_beside_an_unfinished_write(m: ConditionalProtocol) -> None:
    """The reply of a conditional create is lost before its first try reached
    the first AZ; a plain write reaches one other AZ; the resend is refused
    (the key exists); then the old coordinator's try gets to the first AZ."""
    m.start_conditional(coordinator=0, clock=1)
    m.reply_lost(which=0)
    m.start_write(coordinator=1, clock=5, check_at=(0, 1))
    m.commit_to_az(which=0, az=1)
    m.resend(which=0, coordinator=1, check_at=(0, 1), record_at=(0, 1))
    assert m.refused_calls
    m.conditional_at_first_az(which=0)
    m.a_refused_call_never_took_effect()


def test_a_refused_resend_stays_refused() -> None:
    """The resend's read finished the plain write, so the first AZ refuses the
    old try."""
    m = ConditionalProtocol()
    _resend_beside_an_unfinished_write(m)
    assert not m.conds


def test_the_model_finds_a_resend_that_did_not_read_linearizably() -> None:
    class PlainLook(ConditionalProtocol):
        resend_reads = False

    with pytest.raises(AssertionError, match="a refused call took effect"):
        _resend_beside_an_unfinished_write(PlainLook())
