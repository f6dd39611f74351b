"""The policy of a POST Object form (a browser upload): S3's base64 JSON
document of an ``expiration`` and ``conditions``, parsed (:func:`parse`), and
a form's fields checked against it (:func:`check`), as S3 checks them::

    {"expiration": "2026-12-05T13:00:00Z",
     "conditions": [{"bucket": "photos"},
                    ["starts-with", "$key", "uploads/"],
                    {"x-amz-credential": "AKID/20261205/us-east-1/s3/aws4_request"},
                    ["content-length-range", 1, 10485760]]}

A condition is an exact match (``{"field": "value"}`` or ``["eq", "$field",
"value"]``), a prefix (``["starts-with", "$field", "prefix"]``, "" for any
value) or the file's size (``["content-length-range", min, max]``). Field
names are case-insensitive. Every field of the form but ``file``, ``policy``,
the signature itself (``x-amz-signature``; a V2 form's ``AWSAccessKeyId`` and
``signature``) and ``x-ignore-*`` must be named by a condition, and so must
the bucket (the request's). What the form fails is AccessDenied in S3's
words ("Invalid according to Policy: ..."); a policy that is not of this form
is InvalidPolicyDocument. Pure functions, tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tristore.errors import AccessDenied, InvalidPolicyDocument

#: Form fields no condition needs to name (S3's lists: a V4 form's
#: x-amz-signature, a V2 form's AWSAccessKeyId and signature). One set serves
#: both: a form with the fields of both signatures is refused before its
#: policy is read (tristore/sigv4.py, post_signature_version).
EXEMPT = frozenset({"file", "policy", "x-amz-signature", "awsaccesskeyid", "signature"})
IGNORED_PREFIX = "x-ignore-"
META_PREFIX = "x-amz-meta-"
#: The fields a starts-with condition may name (S3's table: the key, the ACL,
#: the standard headers, the redirect, and user metadata); the others (bucket,
#: success_action_status, the signature's fields, other x-amz-*) match exactly.
STARTS_WITH = frozenset(
    {
        "key", "acl", "content-type", "cache-control", "content-disposition",
        "content-encoding", "content-language", "expires", "success_action_redirect",
        "redirect",
    }
)  # fmt: skip
EQ, STARTS, LENGTH = "eq", "starts-with", "content-length-range"


@dataclass(frozen=True)
class Condition:
    """One eq or starts-with condition."""

    op: str
    #: The form field it names, lower-case, without its ``$``.
    field: str
    value: str
    #: How the policy wrote the field (``$Content-Type``): errors show it so.
    written: str

    def __str__(self) -> str:
        """As S3 names a failed condition: ``["eq", "$key", "value"]``."""
        return json.dumps([self.op, self.written, self.value])


@dataclass(frozen=True)
class PostPolicy:
    expiration: dt.datetime
    conditions: tuple[Condition, ...]
    #: content-length-range: the file's least and largest size (None: any).
    length_range: tuple[int, int] | None = None


def _invalid(what: str) -> InvalidPolicyDocument:
    return InvalidPolicyDocument(f"Invalid Policy: {what}")


def parse(policy_b64: str) -> PostPolicy:
    """The policy of a form's ``policy`` field (base64 of S3's JSON)."""
    try:
        doc = json.loads(base64.b64decode(policy_b64.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in doc:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in doc:
        raise _invalid("Policy missing conditions.")
    expiration = _expiration(doc["expiration"])
    raw = doc["conditions"]
    if not isinstance(raw, list):
        raise _invalid("Invalid 'conditions' value: a list is expected.")
    conditions: list[Condition] = []
    length_range: tuple[int, int] | None = None
    for item in raw:
        if isinstance(item, list) and item and str(item[0]).lower() == LENGTH:
            low, high = _length_range(item)
            if length_range is not None:  # several: all of them hold
                low, high = max(low, length_range[0]), min(high, length_range[1])
            length_range = (low, high)
        else:
            conditions.append(_condition(item))
    return PostPolicy(expiration, tuple(conditions), length_range)


def _expiration(value: Any) -> dt.datetime:
    """ISO 8601 in UTC (``2026-12-05T13:00:00Z``, or with milliseconds)."""
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
    raise _invalid(f"Invalid 'expiration' value: {json.dumps(value)[:100]}")


def _text(value: Any) -> str | None:
    """A condition's value: a string (a number taken as its text, as forms send it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _condition(item: Any) -> Condition:
    shown = json.dumps(item)[:200]
    if isinstance(item, dict) and len(item) == 1:
        ((name, raw),) = item.items()
        value = _text(raw)
        if value is not None:
            written = "$" + name.removeprefix("$")
            return Condition(EQ, written[1:].lower(), value, written)
    elif isinstance(item, list) and len(item) == 3:
        op, name, value = str(item[0]).lower(), item[1], _text(item[2])
        named = isinstance(name, str) and name.startswith("$")
        if op in (EQ, STARTS) and named and value is not None:
            return Condition(op, name[1:].lower(), value, name)
    raise _invalid(f"Invalid Condition: {shown}")


def _length_range(item: list[Any]) -> tuple[int, int]:
    bounds = []
    for v in item[1:]:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            bounds.append(v)
    if len(item) != 3 or len(bounds) != 2 or bounds[0] > bounds[1]:
        raise _invalid(
            f"Invalid content-length-range: {json.dumps(item)[:200]} (two whole numbers, "
            "the least and the largest size, are expected)"
        )
    return bounds[0], bounds[1]


def _denied(what: str) -> AccessDenied:
    return AccessDenied(f"Invalid according to Policy: {what}")


def _holds(c: Condition, value: str) -> bool:
    if c.op == EQ:
        return value == c.value
    if c.field not in STARTS_WITH and not c.field.startswith(META_PREFIX):
        return False  # only exact values for this field
    if c.field == "content-type":  # a list of types: each one must start so
        return all(t.strip().startswith(c.value) for t in value.split(","))
    return value.startswith(c.value)


def check(
    policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: dt.datetime | None = None
) -> None:
    """Refuse a form (``fields`` by lower-case name, the key with its
    ``${filename}`` filled in) that the policy does not allow, to upload to
    ``bucket``: AccessDenied, in S3's words. The file's size is checked
    against :attr:`PostPolicy.length_range` as it streams in."""
    if (now or dt.datetime.now(dt.UTC)) > policy.expiration:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    for c in policy.conditions:
        if not _holds(c, values.get(c.field, "")):
            raise _denied(f"Policy Condition failed: {c}")
    named = {c.field for c in policy.conditions}
    extra = [
        name
        for name in values
        if name not in named and name not in EXEMPT and not name.startswith(IGNORED_PREFIX)
    ]
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
