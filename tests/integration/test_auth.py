"""Authentication and authorization with real processes: a hostile client
against every public RPC, policies and ACLs, the admin role, key revocation,
and replication as a replication principal."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.integration.cluster import DevCluster, user_channel, wait_until
from tristore import credentials, errors, sigv4
from tristore.client import Client, Credentials
from tristore.pb import admin_pb2, events_pb2, objects_pb2
from tristore.server import internal_roles

# Users, keys and a snapshot of every bucket and user: cluster-wide state.
pytestmark = [pytest.mark.integration, pytest.mark.private_cluster]

SERVICES = [
    objects_pb2.DESCRIPTOR.services_by_name["ObjectService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    events_pb2.DESCRIPTOR.services_by_name["EventService"],
]
#: Public methods: the internal ones (cluster map, node events) answer only a
#: cluster certificate on the internal port (tests/integration/test_tls.py).
METHODS = [
    (svc, m)
    for svc in SERVICES
    for m in svc.methods
    if internal_roles(f"/{svc.full_name}/{m.name}") is None
]
VICTIM = "victim"


def _message(m: Any) -> Any:
    """A request for method ``m`` about the victim bucket: every field named
    bucket or key set, at any depth a header, version or get goes."""
    from google.protobuf import message_factory

    msg = message_factory.GetMessageClass(m.input_type)()
    _fill(msg)
    return msg


def _fill(msg: Any, depth: int = 0) -> None:
    for f in msg.DESCRIPTOR.fields:
        if f.name in ("bucket", "source_bucket") and f.type == f.TYPE_STRING:
            setattr(msg, f.name, VICTIM)
        elif f.name in ("key", "source_key") and f.type == f.TYPE_STRING:
            setattr(msg, f.name, "k")
        elif f.name == "name" and f.type == f.TYPE_STRING:
            setattr(msg, f.name, "a1")
        elif f.name in ("header", "version", "get") and f.type == f.TYPE_MESSAGE and depth < 3:
            _fill(getattr(msg, f.name), depth + 1)
        elif f.name == "items" and f.type == f.TYPE_MESSAGE and depth < 1:
            _fill(getattr(msg, f.name).add(), depth + 1)


def _code(exc: grpc.RpcError) -> str:
    for k, v in exc.trailing_metadata() or ():  # type: ignore[attr-defined]
        if k == errors.ERROR_CODE_KEY:
            return str(v)
    return f"gRPC {exc.code().name}"  # type: ignore[attr-defined]


def call(endpoint: str, svc: Any, m: Any, msg: Any, metadata: list[tuple[str, str]] | None) -> str:
    """The S3 code the call ends with ("OK" if it was let in)."""
    path = f"/{svc.full_name}/{m.name}"
    # wait_for_ready: a connection that is slow to come up (a loaded machine:
    # a TLS handshake per call) is waited for within the timeout, not answered
    # UNAVAILABLE by the channel; every answer checked here is the node's.
    with user_channel(endpoint) as ch:
        kw: dict[str, Any] = {
            "request_serializer": lambda x: x.SerializeToString(),
            "response_deserializer": lambda b: b,
        }
        try:
            if m.client_streaming and m.server_streaming:
                for _ in ch.stream_stream(path, **kw)(
                    iter([msg]), metadata=metadata, timeout=10, wait_for_ready=True
                ):
                    break
            elif m.client_streaming:
                ch.stream_unary(path, **kw)(
                    iter([msg]), metadata=metadata, timeout=10, wait_for_ready=True
                )
            elif m.server_streaming:
                for _ in ch.unary_stream(path, **kw)(
                    msg, metadata=metadata, timeout=10, wait_for_ready=True
                ):
                    break
            else:
                ch.unary_unary(path, **kw)(msg, metadata=metadata, timeout=10, wait_for_ready=True)
        except grpc.RpcError as exc:
            return _code(exc)
    return "OK"


def sign(creds: Credentials, svc: Any, m: Any, msg: Any, now: dt.datetime | None = None) -> Any:
    """Sign as the SDK does: a request whole, a client stream by its header."""
    payload = sigv4.payload_of(msg, m.client_streaming)
    return credentials.Signer(creds).metadata(f"/{svc.full_name}/{m.name}", payload, now)


def snapshot(c: Client) -> dict[str, Any]:
    """Everything a user could see change: buckets, objects, bodies, ACLs, policies, users."""
    out: dict[str, Any] = {"users": sorted((u.name, u.role) for u in c.list_users())}
    for b in c.list_buckets():
        objects = {}
        for o in c.list_objects(b.name).contents:
            objects[o.key] = (
                o.etag,
                c.get_object(b.name, o.key),
                c.get_object_acl(b.name, o.key).acl,
            )
        try:
            pol = c.get_bucket_policy(b.name)
        except errors.NoSuchBucketPolicy:
            pol = ""
        out[b.name] = (objects, c.get_bucket_versioning(b.name), pol)
    out["map"] = c.cluster_map().epoch
    return out


@pytest.fixture(scope="module")
def users(cluster: DevCluster) -> Iterator[dict[str, Credentials]]:
    """alice and bob (role user), ops (role admin), each with a key; the
    victim bucket (root's) with one object."""
    made = {}
    with cluster.client() as root:
        for name, role in (("alice", "user"), ("bob", "user"), ("ops", "admin")):
            root.create_user(name, role)
            k = root.create_access_key(name)
            made[name] = Credentials(k.access_key_id, k.secret_access_key)
        root.create_bucket(VICTIM)
        root.put_object(VICTIM, "k", b"the victim's data")
    yield made


def _as(cluster: DevCluster, creds: Credentials | None) -> Client:
    if creds is None:
        return Client(cluster.endpoint, anonymous=True)
    return Client(cluster.endpoint, credentials=creds)


# --- the hostile client ------------------------------------------------------------


def test_every_public_rpc_refuses_bad_or_missing_signatures(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    ep = cluster.config.nodes[0].grpc
    root = Credentials(*_root(cluster))
    alice = users["alice"]
    with cluster.client() as c:
        before = snapshot(c)
    wrong = Credentials(root.access_key_id, "not-the-secret")
    unknown = Credentials("TKNOSUCHKEY00000000", root.secret_access_key)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    head = SERVICES[0].methods_by_name["HeadBucket"]
    for svc, m in METHODS:
        msg = _message(m)
        tampered = [
            (k, "0" * 64 if k == sigv4.SHA_KEY else v)  # claims another message's digest
            for k, v in sign(root, svc, m, msg)
        ]
        cases: dict[str, tuple[Any, set[str]]] = {
            "unsigned": (None, {"AccessDenied"}),
            "wrong secret": (sign(wrong, svc, m, msg), {"SignatureDoesNotMatch"}),
            "unknown key": (sign(unknown, svc, m, msg), {"InvalidAccessKeyId"}),
            "expired": (sign(root, svc, m, msg, old), {"RequestTimeTooSkewed"}),
            "tampered": (tampered, {"SignatureDoesNotMatch"}),
        }
        if m.name != "HeadBucket":  # a signature made for one method opens no other
            cases["replayed"] = (sign(root, SERVICES[0], head, msg), {"SignatureDoesNotMatch"})
        if m.name not in ("CreateBucket", "ListBuckets"):
            cases["another user's key"] = (sign(alice, svc, m, msg), {"AccessDenied"})
        for what, (md, allowed) in cases.items():
            got = call(ep, svc, m, msg, md)
            assert got in allowed, f"{svc.name}.{m.name} {what}: {got}"
    assert len(METHODS) > 40
    with cluster.client() as c:
        assert snapshot(c) == before
    # alice may make buckets of her own, not take root's (someone else's: not
    # BucketAlreadyOwnedByYou)
    with _as(cluster, alice) as a, pytest.raises(errors.BucketAlreadyExists) as taken:
        a.create_bucket(VICTIM)
    assert type(taken.value) is errors.BucketAlreadyExists


def _root(cluster: DevCluster) -> tuple[str, str]:
    creds = credentials.root_credentials(cluster.config)
    assert creds is not None
    return creds.access_key_id, creds.secret_access_key


# --- owners, policies, ACLs --------------------------------------------------------


def test_owner_only_by_default_then_policy_allow_and_explicit_deny(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    with _as(cluster, users["alice"]) as alice, _as(cluster, users["bob"]) as bob:
        alice.create_bucket("alices")
        alice.put_object("alices", "docs/a", b"A")
        alice.put_object("alices", "secret/s", b"S")
        assert alice.get_object("alices", "docs/a") == b"A"
        for f in (
            lambda: bob.get_object("alices", "docs/a"),
            lambda: bob.head_object("alices", "docs/a"),
            lambda: bob.list_objects("alices"),
            lambda: bob.put_object("alices", "x", b"x"),
            lambda: bob.delete_object("alices", "docs/a"),
            lambda: bob.put_bucket_policy("alices", {"Statement": []}),
            lambda: bob.delete_bucket("alices"),
        ):
            with pytest.raises(
                errors.AccessDenied, match="user bob is not authorized to perform s3:"
            ):
                f()
        with pytest.raises(errors.AccessDenied, match="arn:aws:s3:::alices/docs/a"):
            bob.get_object("alices", "docs/a")

        alice.put_bucket_policy(
            "alices",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ["bob"]},
                        "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": ["arn:aws:s3:::alices", "arn:aws:s3:::alices/*"],
                    },
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "arn:aws:iam::tristore:user/bob"},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::alices/secret/*",
                    },
                ],
            },
        )
        assert json.loads(alice.get_bucket_policy("alices"))["Statement"][0]["Effect"] == "Allow"
        assert "alices" in {b.name for b in alice.list_buckets()}
        assert "alices" not in {b.name for b in bob.list_buckets()}  # only one's own
        assert VICTIM not in {b.name for b in alice.list_buckets()}
        # The node that took the policy knows at once; the others within [auth] cache_s.
        wait_until(lambda: _can(lambda: bob.get_object("alices", "docs/a")), 10, what="allow")
        assert bob.get_object("alices", "docs/a") == b"A"
        assert [o.key for o in bob.list_objects("alices").contents] == ["docs/a", "secret/s"]
        with pytest.raises(errors.AccessDenied):
            bob.get_object("alices", "secret/s")  # explicit deny over the allow
        with pytest.raises(errors.AccessDenied):
            bob.put_object("alices", "docs/b", b"no")  # not allowed
        with pytest.raises(errors.MalformedPolicy):
            alice.put_bucket_policy("alices", '{"Statement": [{"Effect": "Allow"}]}')
        alice.delete_bucket_policy("alices")
        with pytest.raises(errors.NoSuchBucketPolicy):
            alice.get_bucket_policy("alices")
        wait_until(lambda: not _can(lambda: bob.get_object("alices", "docs/a")), 10, what="revert")


def test_policy_conditions_see_the_calls_own_keys_on_the_grpc_door(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    """aws:SourceIp, aws:SecureTransport, aws:username and s3:prefix, as the
    guard reads them from a gRPC call: each condition decides a request."""

    def allow(action: str, resource: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "Effect": "Allow",
            "Principal": {"AWS": ["bob"]},
            "Action": action,
            "Resource": f"arn:aws:s3:::conds{resource}",
            "Condition": condition,
        }

    def policy(net: str, deny_secure: str) -> dict[str, Any]:
        return {
            "Statement": [
                allow("s3:GetObject", "/*", {"IpAddress": {"aws:SourceIp": net}}),
                allow("s3:ListBucket", "", {"StringLike": {"s3:prefix": "docs/*"}}),
                allow("s3:PutObject", "/*", {"StringEquals": {"aws:username": "bob"}}),
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": "arn:aws:s3:::conds/*",
                    "Condition": {"Bool": {"aws:SecureTransport": deny_secure}},
                },
            ]
        }

    with _as(cluster, users["alice"]) as alice, _as(cluster, users["bob"]) as bob:
        alice.create_bucket("conds")
        alice.put_object("conds", "docs/a", b"A")
        alice.put_bucket_policy("conds", policy("127.0.0.0/8", "false"))
        wait_until(lambda: _can(lambda: bob.get_object("conds", "docs/a")), 10, what="allow")
        assert bob.get_object("conds", "docs/a") == b"A"  # from 127.0.0.1
        assert [o.key for o in bob.list_objects("conds", prefix="docs/").contents] == ["docs/a"]
        with pytest.raises(errors.AccessDenied):
            bob.list_objects("conds", prefix="secret/")
        bob.put_object("conds", "docs/b", b"B")  # his own name, over TLS: not denied

        alice.put_bucket_policy("conds", policy("10.0.0.0/8", "true"))
        wait_until(
            lambda: not _can(lambda: bob.get_object("conds", "docs/a")), 10, what="the new policy"
        )
        with pytest.raises(errors.AccessDenied):
            bob.get_object("conds", "docs/a")  # not from 10/8
        with pytest.raises(errors.AccessDenied):
            bob.put_object("conds", "docs/c", b"C")  # the call came over TLS: denied
        assert alice.get_object("conds", "docs/b") == b"B"  # the owner needs no policy


def _can(f: Any) -> bool:
    try:
        f()
    except errors.AccessDenied:
        return False
    return True


def test_a_missing_key_is_access_denied_to_a_reader_who_may_not_list(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    """On the gRPC door as on the S3 one: a caller allowed to read keys but
    not to list the bucket is told AccessDenied for a key that is not there,
    not NoSuchKey, so it cannot probe which keys exist; allowed to list, it
    is told NoSuchKey."""
    with _as(cluster, users["alice"]) as alice, _as(cluster, users["bob"]) as bob:
        alice.create_bucket("probed")
        alice.put_object("probed", "docs/a", b"A")
        read = {
            "Effect": "Allow",
            "Principal": {"AWS": ["bob"]},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::probed/docs/*",
        }
        alice.put_bucket_policy("probed", {"Version": "2012-10-17", "Statement": [read]})
        wait_until(lambda: _can(lambda: bob.get_object("probed", "docs/a")), 10, what="allow")
        for f in (
            lambda: bob.get_object("probed", "docs/missing"),
            lambda: bob.head_object("probed", "docs/missing"),
        ):
            with pytest.raises(errors.AccessDenied, match="without s3:ListBucket"):
                f()
        with pytest.raises(errors.NoSuchKey):
            alice.get_object("probed", "docs/missing")  # the owner may list
        listing = {
            "Effect": "Allow",
            "Principal": {"AWS": ["bob"]},
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::probed",
        }
        alice.put_bucket_policy("probed", {"Version": "2012-10-17", "Statement": [read, listing]})

        def told_missing() -> bool:
            try:
                bob.head_object("probed", "docs/missing")
            except errors.NoSuchKey:
                return True
            except errors.AccessDenied:
                return False
            raise AssertionError("docs/missing is there")

        wait_until(told_missing, 10, what="NoSuchKey once bob may list")
        with pytest.raises(errors.NoSuchKey):
            bob.get_object("probed", "docs/missing")


def test_public_read_lets_anonymous_get_and_head_only(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    with _as(cluster, users["alice"]) as alice, _as(cluster, None) as anon:
        alice.create_bucket("alices-pub")
        alice.put_object("alices-pub", "open", b"for all", acl="public-read")
        alice.put_object("alices-pub", "closed", b"private")
        assert anon.get_object("alices-pub", "open") == b"for all"
        assert anon.head_object("alices-pub", "open").size == 7
        for f in (
            lambda: anon.get_object("alices-pub", "closed"),
            lambda: anon.list_objects("alices-pub"),
            lambda: anon.put_object("alices-pub", "open", b"overwritten"),
            lambda: anon.delete_object("alices-pub", "open"),
            lambda: anon.put_object_acl("alices-pub", "closed", "public-read"),
            lambda: anon.list_buckets(),
            lambda: anon.create_bucket("anons"),
        ):
            with pytest.raises(errors.AccessDenied, match="anonymous is not authorized"):
                f()
        alice.put_object_acl("alices-pub", "open", "private")
        with pytest.raises(errors.AccessDenied):
            anon.get_object("alices-pub", "open")
        assert alice.get_object("alices-pub", "open") == b"for all"


def test_admin_role(cluster: DevCluster, users: dict[str, Credentials]) -> None:
    with _as(cluster, users["alice"]) as alice, _as(cluster, users["ops"]) as ops:
        for f in (
            alice.cluster_status,
            alice.cluster_map,
            alice.node_config,
            alice.list_users,
            lambda: alice.create_user("mallory", "admin"),
            lambda: alice.create_access_key("bob"),
            lambda: alice.change_node("a1", "drain"),
        ):
            with pytest.raises(errors.AccessDenied, match="needs the admin role"):
                f()
        assert {"alice", "ops", "root"} <= {u.name for u in ops.list_users()}
        assert ops.cluster_map().epoch >= 1
        assert ops.get_object(VICTIM, "k") == b"the victim's data"  # admins may do anything


def test_explicit_deny_binds_admins_but_root_can_always_undo_the_policy(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    """A policy that denies everyone everything locks admins out of the bucket
    (root too, but for its policy); root deletes the policy and all is back."""
    with _as(cluster, users["ops"]) as ops, cluster.client() as root:
        ops.create_bucket("locked")
        ops.put_object("locked", "k", b"kept")
        root.put_bucket_policy(
            "locked",
            {
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::locked", "arn:aws:s3:::locked/*"],
                    }
                ]
            },
        )
        # The node that took the policy knows at once; the others within [auth]
        # cache_s: each node is asked until it refuses too.
        bound = cluster.config.auth.cache_s + 5
        for n in cluster.config.nodes:
            with Client(n.grpc, credentials=users["ops"]) as one:
                wait_until(
                    lambda one=one: not _can(lambda: one.get_object("locked", "k")),
                    bound,
                    what=f"the deny on {n.name}",
                )
        for f in (
            lambda: ops.get_object("locked", "k"),
            lambda: ops.put_object("locked", "k", b"overwritten"),
            lambda: ops.list_objects("locked"),
            lambda: ops.delete_bucket_policy("locked"),
            lambda: root.get_object("locked", "k"),
            lambda: root.delete_object("locked", "k"),
        ):
            with pytest.raises(errors.AccessDenied, match="is not authorized to perform s3:"):
                f()
        assert json.loads(root.get_bucket_policy("locked"))["Statement"][0]["Effect"] == "Deny"
        root.delete_bucket_policy("locked")
        wait_until(lambda: _can(lambda: ops.get_object("locked", "k")), 10, what="the undo")
        assert ops.get_object("locked", "k") == b"kept"


def test_revoked_key_and_removed_user_stop_working_on_every_node(cluster: DevCluster) -> None:
    endpoints = [n.grpc for n in cluster.config.nodes]
    with cluster.client() as root:
        root.create_user("carol")
        k1 = root.create_access_key("carol")
        k2 = root.create_access_key("carol")
        creds1 = Credentials(k1.access_key_id, k1.secret_access_key)
        creds2 = Credentials(k2.access_key_id, k2.secret_access_key)
        assert {k.access_key_id for k in root.list_access_keys("carol")} == {
            k1.access_key_id,
            k2.access_key_id,
        }
        clients = [Client(ep, credentials=creds1, retry=None) for ep in endpoints]
        try:
            for c in clients:  # every node knows the new key (it re-reads on a miss)
                c.list_buckets()
            root.revoke_access_key(k1.access_key_id)
            bound = cluster.config.auth.cache_s + 1.0
            for c in clients:
                wait_until(
                    lambda c=c: not _works(c), bound + 5, what="the revoked key to be refused"
                )
            with pytest.raises(errors.InvalidAccessKeyId):
                clients[0].list_buckets()
        finally:
            for c in clients:
                c.close()
        with Client(cluster.endpoint, credentials=creds2) as c2:
            c2.list_buckets()
            root.delete_user("carol")
            wait_until(lambda: not _works(c2), 10, what="the removed user's key to be refused")
        with pytest.raises(errors.NoSuchEntity):
            root.create_access_key("carol")


def _works(c: Client) -> bool:
    try:
        c.list_buckets()
    except errors.InvalidAccessKeyId:
        return False
    return True


def test_cli_manages_users_keys_and_policies(cluster: DevCluster) -> None:
    cluster.cli("admin", "user", "add", "dave")
    out = cluster.cli("admin", "key", "create", "dave").stdout.decode()
    env = dict(
        line[len("export ") :].split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    assert set(env) == {credentials.ACCESS_KEY_ENV, credentials.SECRET_KEY_ENV}
    ls = cluster.cli("admin", "key", "ls", "--user", "dave", "--json").stdout.decode()
    assert [k["access_key_id"] for k in json.loads(ls)] == [env[credentials.ACCESS_KEY_ENV]]
    assert env[credentials.SECRET_KEY_ENV] not in ls
    cluster.cli("mb", "s3://daves", extra_env=env)
    denied = cluster.cli("admin", "status", extra_env=env, check=False)
    assert denied.returncode == 1 and b"AccessDenied" in denied.stderr
    pol = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::daves/*",
                }
            ]
        }
    )
    cluster.cli("policy", "put", "s3://daves", "-", input=pol.encode(), extra_env=env)
    assert json.loads(cluster.cli("policy", "get", "s3://daves").stdout) == json.loads(pol)
    bad = cluster.cli("policy", "put", "s3://daves", "-", input=b"{", extra_env=env, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith(b"MalformedPolicy")
    cluster.cli("policy", "rm", "s3://daves", extra_env=env)
    cluster.cli("admin", "key", "revoke", env[credentials.ACCESS_KEY_ENV])
    cluster.cli("admin", "user", "rm", "dave")
    assert b"dave" not in cluster.cli("admin", "user", "ls").stdout


def test_verification_needs_no_rpc_per_request_when_warm(
    cluster: DevCluster, users: dict[str, Credentials]
) -> None:
    node = cluster.config.nodes[0]
    metric = "tristore_node_auth_table_reads_total"
    with Client(node.grpc, credentials=users["alice"]) as alice:
        alice.list_buckets()  # warm
        before = cluster.metric(node.name, metric)
        started = time.monotonic()
        for _ in range(300):
            alice.list_buckets()
        elapsed = time.monotonic() - started
        reads = cluster.metric(node.name, metric) - before
    # At most one re-read of the table per [auth] cache_s, whatever the rate.
    assert reads <= elapsed / cluster.config.auth.cache_s + 2, (reads, elapsed)
