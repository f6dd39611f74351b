"""Bucket policies: parsing (MalformedPolicy) and evaluation (explicit deny wins)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tristore import errors, policy
from tristore.policy import ALLOW, DENY, Request

pytestmark = pytest.mark.unit


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stmt(effect: str = "Allow", principal: Any = "*", action: Any = "s3:GetObject",
         resource: Any = "arn:aws:s3:::b/*", **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource,
            **extra}  # fmt: skip


def test_allow_anonymous_read_of_a_prefix() -> None:
    p = policy.parse(doc(stmt(resource="arn:aws:s3:::b/public/*")), "b")
    assert policy.evaluate(p, Request(None, "s3:GetObject", "b", "public/x")) == ALLOW
    assert policy.evaluate(p, Request(None, "s3:GetObject", "b", "private/x")) is None
    assert policy.evaluate(p, Request(None, "s3:PutObject", "b", "public/x")) is None


def test_explicit_deny_wins_over_allow() -> None:
    p = policy.parse(
        doc(
            stmt(principal={"AWS": ["alice"]}, action="s3:*"),
            stmt("Deny", {"AWS": "arn:aws:iam::tristore:user/alice"}, "s3:DeleteObject"),
        ),
        "b",
    )
    assert policy.evaluate(p, Request("alice", "s3:GetObject", "b", "k")) == ALLOW
    assert policy.evaluate(p, Request("alice", "s3:DeleteObject", "b", "k")) == DENY
    assert policy.evaluate(p, Request("bob", "s3:GetObject", "b", "k")) is None


def test_actions_are_case_insensitive_and_take_wildcards() -> None:
    p = policy.parse(doc(stmt(action=["s3:get*"], resource="arn:aws:s3:::b*")), "b")
    assert policy.evaluate(p, Request(None, "s3:GetObjectTagging", "b", "k")) == ALLOW
    assert policy.evaluate(p, Request(None, "s3:GetBucketVersioning", "b")) == ALLOW


def test_every_action_the_guard_checks_can_be_named() -> None:
    """A policy may name any action an operation is authorized as
    (node/guard.py RULES: s3:GetBucketLocation, s3:GetBucketTagging, ...)."""
    from node.guard import RULES

    actions = sorted({a for a, _ in RULES.values()})
    p = policy.parse(doc(stmt(action=actions, resource="arn:aws:s3:::b")), "b")
    for action in actions:
        assert policy.evaluate(p, Request(None, action, "b")) == ALLOW, action


@pytest.mark.parametrize(
    ("condition", "ctx", "verdict"),
    [
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, ALLOW),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, None),
        ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}, {"aws:SourceIp": "127.0.0.1"}, ALLOW),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, None),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, ALLOW),
        ({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/alice/"}, ALLOW),
        ({"StringEquals": {"s3:prefix": ""}}, {}, None),
        ({"StringNotEquals": {"s3:prefix": "x"}}, {}, ALLOW),
    ],
)
def test_conditions(condition: dict[str, Any], ctx: dict[str, str], verdict: str | None) -> None:
    p = policy.parse(doc(stmt(action="s3:*", resource="arn:aws:s3:::b", Condition=condition)), "b")
    assert policy.evaluate(p, Request(None, "s3:ListBucket", "b", None, ctx)) == verdict


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"Statement": []}),
        json.dumps({"Version": "2020-01-01", "Statement": [stmt()]}),
        doc(stmt(effect="Maybe")),
        doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}),
        doc(stmt(action="s3:FlyToTheMoon")),
        doc(stmt(action="ec2:*")),
        doc(stmt(resource="arn:aws:s3:::other/*")),
        doc(stmt(resource="b/*")),
        doc(stmt(principal={"CanonicalUser": "x"})),
        doc(stmt(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020"}})),
        doc(stmt(Condition={"StringEquals": {"aws:Referer": "x"}})),
        doc(stmt(Condition={"IpAddress": {"aws:SourceIp": "nope"}})),
        doc({**stmt(), "NotAction": "s3:GetObject"}),
        "x" * (policy.MAX_POLICY_BYTES + 1),
    ],
)
def test_malformed_policies_are_refused(text: str) -> None:
    with pytest.raises(errors.MalformedPolicy):
        policy.parse(text, "b")


EFFECTS = st.sampled_from([ALLOW, DENY])
ACTS = st.sampled_from(["s3:GetObject", "s3:PutObject", "s3:*", "s3:Get*"])
USERS = st.sampled_from(["*", "alice", "bob"])
KEYS = st.sampled_from(["a/*", "*", "a/x", "b?"])


@given(
    st.lists(st.tuples(EFFECTS, USERS, ACTS, KEYS), min_size=1, max_size=6),
    st.sampled_from([None, "alice", "bob"]),
    st.sampled_from(["s3:GetObject", "s3:PutObject"]),
    st.sampled_from(["a/x", "a/y", "bx", "c"]),
)
def test_verdict_is_deny_if_any_deny_applies_else_allow_if_any_allow(
    items: list[tuple[str, str, str, str]], user: str | None, action: str, key: str
) -> None:
    statements = [
        stmt(e, "*" if u == "*" else {"AWS": u}, a, f"arn:aws:s3:::b/{k}") for e, u, a, k in items
    ]
    p = policy.parse(doc(*statements), "b")
    verdicts = []
    for s in statements:  # each statement on its own
        v = policy.evaluate(policy.parse(doc(s), "b"), Request(user, action, "b", key))
        verdicts.append(v)
    got = policy.evaluate(p, Request(user, action, "b", key))
    if DENY in verdicts:
        assert got == DENY
    elif ALLOW in verdicts:
        assert got == ALLOW
    else:
        assert got is None
    # Order does not matter.
    assert policy.evaluate(policy.parse(doc(*reversed(statements)), "b"),
                           Request(user, action, "b", key)) == got  # fmt: skip
