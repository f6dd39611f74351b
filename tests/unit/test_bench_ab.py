"""bench/ab.py's phase specs: what it runs is what was asked, and a bad spec
is refused with a message naming it (the runs themselves are CI's quick form)."""

from __future__ import annotations

import pytest

from bench.ab import parse_phases

pytestmark = pytest.mark.unit


def test_phases_parse_in_order() -> None:
    assert parse_phases("put:64:6000,get:1:10") == [("put", 64, 6000), ("get", 1, 10)]


@pytest.mark.parametrize("spec", ["delete:1:10", "put:64", "put:0:10", "get:8:4", "put:x:1"])
def test_a_bad_phase_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=spec):
        parse_phases(spec)
