#!/usr/bin/env python3
"""The common management API GETs, side by side: Warren and a real RabbitMQ.

Usage: mgmt_diff.py WARREN_BASE REFERENCE_BASE   (e.g. http://127.0.0.1:15672)

Builds the same state on both (a vhost, a user, permissions, an exchange, a
queue with messages, a binding, a policy), then GETs the same paths and
compares what a client can rely on: every field RabbitMQ returns is there
(except those that describe Erlang internals), and the values that are not
volatile (names, flags, arguments, counts, policies, bindings, error bodies)
are equal. Prints each difference; exits 1 if there is any.
"""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

WARREN, REFERENCE = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
TAG = f"diff{os.getpid()}"
VH, USER, X, Q, POL = f"{TAG}-vh", f"{TAG}-user", f"{TAG}-x", f"{TAG}-q", f"{TAG}-pol"
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()

# Fields about Erlang processes, memory and RabbitMQ's classic-queue internals.
ERLANG_ONLY = {
    "backing_queue_status", "garbage_collection", "reductions", "reductions_details", "memory",
    "consumer_capacity", "consumer_utilisation", "head_message_timestamp", "idle_since",
    "message_bytes_paged_out", "message_bytes_persistent", "message_bytes_ram", "messages_paged_out",
    "messages_persistent", "messages_ram", "messages_ready_ram", "messages_unacknowledged_ram",
    "recoverable_slaves", "erlang_full_version", "erlang_version", "statistics_db_event_queue",
    "sample_retention_policies", "churn_rates", "message_stats", "exclusive_consumer_tag",
    "slave_nodes", "synchronised_slave_nodes", "owner_pid_details", "user_who_performed_action",
}


def call(base, method, path, body=None, auth=AUTH):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if auth:
        req.add_header("Authorization", auth)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    return status, (json.loads(text) if text.strip() else None)


def setup(base):
    steps = [
        ("PUT", f"/api/vhosts/{VH}", {"description": "diff test", "tags": "a,b"}),
        ("PUT", f"/api/users/{USER}", {"password": "pw", "tags": "management"}),
        ("PUT", f"/api/permissions/{VH}/{USER}", {"configure": "^x", "write": ".*", "read": ".*"}),
        ("PUT", f"/api/topic-permissions/{VH}/{USER}", {"exchange": "amq.topic", "write": "^a", "read": ".*"}),
        ("PUT", f"/api/exchanges/{VH}/{X}", {"type": "topic", "durable": True}),
        ("PUT", f"/api/queues/{VH}/{Q}", {"durable": True, "arguments": {"x-max-length": 100}}),
        ("POST", f"/api/bindings/{VH}/e/{X}/q/{Q}", {"routing_key": "a.#", "arguments": {}}),
        ("PUT", f"/api/policies/{VH}/{POL}", {"pattern": f"^{Q}$", "definition": {"message-ttl": 600000}, "apply-to": "queues"}),
    ] + [
        ("POST", f"/api/exchanges/{VH}/{X}/publish",
         {"routing_key": "a.b", "payload": f"m{i}", "payload_encoding": "string", "properties": {"delivery_mode": 2}})
        for i in range(3)
    ]
    for method, path, body in steps:
        status, reply = call(base, method, path, body)
        if status not in (200, 201, 204):
            sys.exit(f"setup on {base}: {method} {path} -> {status} {reply}")


def teardown(base):
    call(base, "DELETE", f"/api/vhosts/{VH}")
    call(base, "DELETE", f"/api/users/{USER}")


def settled(base, path, key, want):
    deadline = time.time() + 30
    while True:
        status, v = call(base, "GET", path)
        if (status == 200 and v.get(key) == want) or time.time() > deadline:
            return status, v
        time.sleep(0.5)


differences = []


def differ(path, what):
    differences.append(f"{path}: {what}")
    print(f"DIFF {path}: {what}")


def compare_keys(path, w, r):
    if isinstance(r, dict) and isinstance(w, dict):
        missing = sorted(k for k in r if k not in w and k not in ERLANG_ONLY)
        if missing:
            differ(path, f"fields missing: {missing}")


def compare_values(path, w, r, keys):
    for k in keys:
        if w.get(k) != r.get(k):
            differ(path, f"{k}: warren {json.dumps(w.get(k))} vs rabbitmq {json.dumps(r.get(k))}")


def both(path, method="GET", body=None, auth=AUTH):
    return call(WARREN, method, path, body, auth), call(REFERENCE, method, path, body, auth)


def check(path, values=(), equal=False, keys=True):
    (ws, w), (rs, r) = both(path)
    if ws != rs:
        differ(path, f"status: warren {ws} vs rabbitmq {rs}")
        return
    if equal:
        if w != r:
            differ(path, f"body: warren {json.dumps(w)} vs rabbitmq {json.dumps(r)}")
        return
    items = [(w, r)] if isinstance(r, dict) else list(zip(w or [], r or []))
    if isinstance(r, list) and len(w or []) != len(r):
        differ(path, f"length: warren {len(w or [])} vs rabbitmq {len(r)}")
    for wi, ri in items:
        if keys:
            compare_keys(path, wi, ri)
        compare_values(path, wi, ri, values)


def sorted_by(v, *keys):
    return sorted(v, key=lambda d: tuple(str(d.get(k)) for k in keys))


def main():
    for base in (WARREN, REFERENCE):
        teardown(base)
        setup(base)
    try:
        # RabbitMQ fills in a new queue's fields (state, consumers, policy)
        # and counts as its stats collection runs: wait for all of them.
        for base in (WARREN, REFERENCE):
            for key, want in (("messages", 3), ("state", "running"), ("consumers", 0), ("policy", POL)):
                settled(base, f"/api/queues/{VH}/{Q}", key, want)
            deadline = time.time() + 30
            while time.time() < deadline:
                _, listed = call(base, "GET", f"/api/queues/{VH}")
                if listed and all(q.get("policy") == POL for q in listed if q.get("name") == Q):
                    break
                time.sleep(0.5)
        check("/api/whoami", equal=True)
        check("/api/overview", values=["rates_mode", "exchange_types"])
        check(f"/api/vhosts/{VH}", values=["name", "description", "tags", "tracing", "messages", "messages_ready"])
        check(f"/api/users/{USER}", values=["name", "tags", "hashing_algorithm", "limits"])
        check(f"/api/permissions/{VH}/{USER}", equal=True)
        check(f"/api/topic-permissions/{VH}/{USER}", equal=True)
        check(f"/api/vhosts/{VH}/permissions", equal=True)
        check(f"/api/exchanges/{VH}/{X}", values=["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"])
        check(f"/api/exchanges/{VH}/amq.default", values=["name", "type", "durable", "internal"])
        check(f"/api/queues/{VH}/{Q}", values=[
            "name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "type", "state", "messages",
            "messages_ready", "messages_unacknowledged", "consumers", "policy", "operator_policy",
            "effective_policy_definition", "consumer_details"])
        check(f"/api/queues/{VH}", values=["name", "messages", "policy"])
        check(f"/api/queues/{VH}/{Q}/bindings", equal=True)
        check(f"/api/exchanges/{VH}/{X}/bindings/source", equal=True)
        check(f"/api/bindings/{VH}/e/{X}/q/{Q}", equal=True)
        check(f"/api/policies/{VH}/{POL}", equal=True)
        check(f"/api/policies/{VH}", equal=True)
        check("/api/health/checks/alarms", equal=True)
        check("/api/health/checks/virtual-hosts", equal=True)
        check(f"/api/aliveness-test/{VH}", equal=True)
        check(f"/api/queues/{VH}/no-such-queue", equal=True)
        check(f"/api/exchanges/{VH}/no-such-exchange", equal=True)
        check("/api/vhosts/no-such-vhost", equal=True)
        (ws, w), (rs, r) = both(f"/api/queues?page=1&page_size=1&name={TAG}&columns=name,vhost")
        if (ws, sorted(w or {})) != (rs, sorted(r or {})) or w.get("items") != r.get("items"):
            differ("paged queues", f"warren {ws} {w} vs rabbitmq {rs} {r}")
        (ws, w), (rs, r) = both(f"/api/definitions/{VH}")
        for part, key in (("queues", "name"), ("exchanges", "name"), ("bindings", "destination"), ("policies", "name")):
            wp, rp = sorted_by(w.get(part, []), key), sorted_by(r.get(part, []), key)
            if wp != rp:
                differ(f"/api/definitions/{VH} {part}", f"warren {wp} vs rabbitmq {rp}")
        (ws, w), (rs, r) = both(f"/api/queues/{VH}/{Q}", "PUT", {"durable": False})
        if (ws, w) != (rs, r):
            differ("inequivalent PUT", f"warren {ws} {w} vs rabbitmq {rs} {r}")
        (ws, w), (rs, r) = both("/api/overview", auth="Basic " + base64.b64encode(b"guest:nope").decode())
        if (ws, w) != (rs, r):
            differ("wrong password", f"warren {ws} {w} vs rabbitmq {rs} {r}")
        (ws, w), (rs, r) = both(f"/api/queues/{VH}/{Q}/get", "POST", {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"})
        strip = lambda ms: [{k: v for k, v in m.items()} for m in ms or []]
        if strip(w) != strip(r):
            differ("queue get", f"warren {w} vs rabbitmq {r}")
    finally:
        for base in (WARREN, REFERENCE):
            teardown(base)
    print(f"mgmt_diff: {len(differences)} difference(s)")
    sys.exit(1 if differences else 0)


main()
