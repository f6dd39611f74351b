"""Bucket CORS: S3's XML both ways and its validation (node/s3/xml.py,
tristore/cors.py), rule matching, the stored form, and the headers answered
(node/s3/cors.py)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from node.s3 import cors as s3cors
from node.s3 import xml
from tristore import convert, cors, errors
from tristore.cors import Rule

pytestmark = pytest.mark.unit

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _doc(*rules: str) -> bytes:
    body = "".join(f"<CORSRule>{r}</CORSRule>" for r in rules)
    return f'<CORSConfiguration xmlns="{NS[1:-1]}">{body}</CORSConfiguration>'.encode()


FULL = (
    "<ID>web</ID><AllowedOrigin>https://*.example.com</AllowedOrigin>"
    "<AllowedOrigin>http://localhost:8080</AllowedOrigin>"
    "<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
    "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
    "<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>"
    "<MaxAgeSeconds>3000</MaxAgeSeconds>"
)


def test_a_configuration_parses_and_round_trips() -> None:
    rules = xml.parse_cors(
        _doc(FULL, "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>")
    )
    assert rules == [
        Rule(
            ("https://*.example.com", "http://localhost:8080"),
            ("GET", "PUT"),
            ("x-amz-*", "Content-Type"),
            ("ETag", "x-amz-request-id"),
            3000,
            "web",
        ),
        Rule(("*",), ("HEAD",)),
    ]
    root = ET.fromstring(xml.cors_config(rules))
    assert root.tag == NS + "CORSConfiguration"
    first = root.findall(NS + "CORSRule")[0]
    assert [e.text for e in first.findall(NS + "AllowedOrigin")] == list(rules[0].allowed_origins)
    assert first.findtext(NS + "MaxAgeSeconds") == "3000"
    assert xml.parse_cors(xml.cors_config(rules)) == rules


def test_the_stored_form_is_versioned_and_round_trips() -> None:
    rules = xml.parse_cors(
        _doc(FULL, "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")
    )
    text = cors.dump(rules)
    assert text.startswith('{"v":1,')
    assert cors.load(text) == tuple(rules)
    assert cors.load("") == ()
    with pytest.raises(ValueError):
        cors.load('{"v":99,"rules":[]}')


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<CORSConfiguration/>",  # no rule
        b"<NotCORS/>",
        _doc("<AllowedMethod>GET</AllowedMethod>"),  # no origin
        _doc("<AllowedOrigin>*</AllowedOrigin>"),  # no method
        _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus/>"),
        _doc(
            "<ID>a</ID><ID>b</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        ),
        _doc(
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>soon</MaxAgeSeconds>"
        ),
    ],
)
def test_malformed_documents(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        xml.parse_cors(body)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>",
         "Unsupported method is PATCH"),
        ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>",
         "Unsupported method is get"),
        ("<AllowedOrigin>https://*.*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
         'AllowedOrigin "https://*.*.com" can not have more than one wildcard'),
        ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
         "<AllowedHeader>**</AllowedHeader>", "AllowedHeader"),
        ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
         "<ExposeHeader>x-*</ExposeHeader>", "wildcard for ExposeHeader"),
        ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
         "<MaxAgeSeconds>-1</MaxAgeSeconds>", "negative"),
        (f"<ID>{'i' * 256}</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
         "ID"),
    ],
)  # fmt: skip
def test_invalid_rules_are_refused_with_a_clear_message(rule: str, words: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=words.replace("*", r"\*")):
        xml.parse_cors(_doc(rule))


def test_at_most_100_rules() -> None:
    one = "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    assert len(xml.parse_cors(_doc(*[one] * 100))) == 100
    with pytest.raises(errors.InvalidRequest, match="at most 100"):
        xml.parse_cors(_doc(*[one] * 101))


def test_wildcards() -> None:
    assert cors.wildcard_match("*", "https://anything")
    assert cors.wildcard_match("https://*.example.com", "https://app.example.com")
    assert cors.wildcard_match("https://*.example.com", "HTTPS://App.Example.COM")
    assert not cors.wildcard_match("https://*.example.com", "https://example.com")
    assert not cors.wildcard_match("https://*.example.com", "http://app.example.com")
    assert not cors.wildcard_match("https://*.example.com", "https://app.example.com.evil")
    assert cors.wildcard_match("http://localhost:*", "http://localhost:3000")
    assert cors.wildcard_match("X-Amz-*", "x-amz-date")
    assert not cors.wildcard_match("ab*ba", "aba")  # the head and tail may not overlap
    assert cors.wildcard_match("exact", "EXACT")


RULES = (
    Rule(("https://*.example.com",), ("GET", "PUT"), ("x-amz-*", "Content-Type"), ("ETag",), 600),
    Rule(("*",), ("GET", "HEAD")),
)


def test_the_first_matching_rule_answers() -> None:
    m = cors.match(RULES, "https://app.example.com", "GET", ["X-Amz-Date", "content-type"])
    assert m is not None and m.rule is RULES[0]
    assert m.allow_origin == "https://app.example.com" and m.credentials
    # A header the first rule does not allow: the second, without headers, allows none.
    assert cors.match(RULES, "https://app.example.com", "GET", ["Authorization"]) is None
    # The method decides between the rules.
    m = cors.match(RULES, "https://app.example.com", "HEAD")
    assert m is not None and m.rule is RULES[1] and m.allow_origin == "*" and not m.credentials
    m = cors.match(RULES, "https://elsewhere.org", "GET")
    assert m is not None and m.rule is RULES[1]
    assert cors.match(RULES, "https://elsewhere.org", "PUT") is None
    assert cors.match(RULES, "https://app.example.com", "get") is None  # methods: exact
    assert cors.match(RULES, "https://app.example.com", "DELETE") is None
    assert cors.match((), "https://app.example.com", "GET") is None


def test_a_specific_origin_beats_a_star_in_one_rule() -> None:
    rule = Rule(("*", "https://a.example"), ("GET",))
    m = cors.match([rule], "https://a.example", "GET")
    assert m is not None and m.allow_origin == "https://a.example" and m.credentials
    m = cors.match([rule], "https://b.example", "GET")
    assert m is not None and m.allow_origin == "*"


def test_request_headers_are_split_and_trimmed() -> None:
    assert cors.request_headers(" Content-Type ,x-amz-date,, ") == ["Content-Type", "x-amz-date"]
    assert cors.request_headers(None) == []


def test_answer_headers() -> None:
    m = cors.match(RULES, "https://app.example.com", "PUT", ["Content-Type"])
    assert m is not None
    assert s3cors.headers(m, ["Content-Type"]) == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Access-Control-Allow-Methods": "GET, PUT",
        "Access-Control-Allow-Headers": "content-type",
        "Access-Control-Expose-Headers": "ETag",
        "Access-Control-Max-Age": "600",
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    star = cors.match(RULES, "https://x.org", "GET")
    assert star is not None
    h = s3cors.headers(star)
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in h
    assert "Access-Control-Max-Age" not in h and "Access-Control-Expose-Headers" not in h


def test_cors_errors_have_s3_statuses() -> None:
    assert errors.http_status(errors.NoSuchCORSConfiguration()) == 404
    assert errors.http_status(errors.AccessForbidden()) == 403
    assert errors.http_status(errors.BadRequest()) == 400


def test_rules_round_trip_through_protobuf() -> None:
    for rule in (*RULES, Rule(("*",), ("GET",), max_age_seconds=0)):
        assert convert.cors_rule_from_pb(convert.cors_rule_to_pb(rule)) == rule
