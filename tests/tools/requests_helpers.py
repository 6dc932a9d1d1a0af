#!/usr/bin/env python3
"""The management API calls test suites make with Python's `requests`, as
Testcontainers users and common pytest fixtures write them, against Warren.

Usage: requests_helpers.py HTTP_BASE AMQP_PORT

Each check is a pattern copied from how such helpers are written: wait for
the API, create a vhost and grant guest on it, read a queue's depth and
consumers while a test publishes, assert health, clean up. Exits non-zero on
the first mismatch. Works unchanged against RabbitMQ."""
import sys
import time
import uuid

import requests
from requests.auth import HTTPBasicAuth

BASE, AMQP_PORT = sys.argv[1].rstrip("/"), int(sys.argv[2])
AUTH = HTTPBasicAuth("guest", "guest")
s = requests.Session()
s.auth = AUTH
TAG = uuid.uuid4().hex[:8]
VH = f"it-{TAG}"
Q = f"orders-{TAG}"


def ok(what):
    print(f"ok - {what}")


# 1. "wait_for_rabbitmq": poll the overview until it answers 200.
deadline = time.time() + 30
while True:
    try:
        r = requests.get(f"{BASE}/api/overview", auth=AUTH, timeout=2)
        if r.status_code == 200:
            break
    except requests.ConnectionError:
        pass
    assert time.time() < deadline, "the management API never answered"
    time.sleep(0.2)
overview = r.json()
assert "rabbitmq_version" in overview and "object_totals" in overview, overview
ok("overview answers with rabbitmq_version and object_totals")

# 2. Health checks as compose files and readiness probes call them.
for path in ("/api/health/checks/alarms", "/api/health/checks/virtual-hosts", "/api/aliveness-test/%2F",
             "/api/healthchecks/node"):
    r = s.get(BASE + path)
    r.raise_for_status()
    assert r.json()["status"] == "ok", (path, r.text)
ok("health checks and the aliveness test say ok (old /api/healthchecks/node too)")

# 3. A vhost per test run, guest granted on it (json= sets the content type).
r = s.put(f"{BASE}/api/vhosts/{VH}", json={"description": "pytest"})
assert r.status_code in (201, 204), r.text
r = s.put(f"{BASE}/api/permissions/{VH}/guest", json={"configure": ".*", "write": ".*", "read": ".*"})
assert r.status_code in (201, 204), r.text
assert any(v["name"] == VH for v in s.get(f"{BASE}/api/vhosts").json())
ok("vhost created and guest granted")

# 4. Declare a queue over HTTP, publish over HTTP, then read the depth the
#    way assertions do: poll the queue until `messages` is what is expected.
s.put(f"{BASE}/api/queues/{VH}/{Q}", json={"durable": True, "auto_delete": False, "arguments": {}}).raise_for_status()
for i in range(3):
    r = s.post(f"{BASE}/api/exchanges/{VH}/amq.default/publish",
               json={"properties": {"delivery_mode": 2}, "routing_key": Q, "payload": f"order {i}",
                     "payload_encoding": "string"})
    r.raise_for_status()
    assert r.json() == {"routed": True}, r.text


def depth():
    return s.get(f"{BASE}/api/queues/{VH}/{Q}").json().get("messages")


def wait_depth(n):
    """Poll, as assertions on RabbitMQ must: its counts lag by a few seconds."""
    deadline = time.time() + 20
    while depth() != n:
        assert time.time() < deadline, f"depth stayed at {depth()}, expected {n}"
        time.sleep(0.25)


wait_depth(3)
ok("queue depth reads 3 after three publishes")

# 5. Peek at the messages the way helpers "get and requeue".
msgs = s.post(f"{BASE}/api/queues/{VH}/{Q}/get",
              json={"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}).json()
assert [m["payload"] for m in msgs] == ["order 0", "order 1", "order 2"], msgs
ok("get with requeue returns the three payloads in order")

# 6. Listing queues filtered by name, as fixtures that clean up do.
names = [q["name"] for q in s.get(f"{BASE}/api/queues/{VH}", params={"columns": "name,messages"}).json()]
assert names == [Q], names
paged = s.get(f"{BASE}/api/queues", params={"page": 1, "page_size": 50, "name": TAG, "use_regex": "false"}).json()
assert paged["filtered_count"] == 1 and paged["items"][0]["name"] == Q, paged
ok("queue listings, plain and paged")

# 7. Errors a helper checks for: 404 for a missing queue, 401 for bad auth.
r = s.get(f"{BASE}/api/queues/{VH}/missing-{TAG}")
assert r.status_code == 404 and r.json() == {"error": "Object Not Found", "reason": "Not Found"}, r.text
r = requests.get(f"{BASE}/api/overview", auth=HTTPBasicAuth("guest", "wrong"))
assert r.status_code == 401 and r.json()["error"] == "not_authorized", r.text
ok("404 and 401 bodies as RabbitMQ sends them")

# 8. Teardown: purge, delete the queue, then the vhost.
s.delete(f"{BASE}/api/queues/{VH}/{Q}/contents").raise_for_status()
wait_depth(0)
s.delete(f"{BASE}/api/queues/{VH}/{Q}").raise_for_status()
s.delete(f"{BASE}/api/vhosts/{VH}").raise_for_status()
assert s.get(f"{BASE}/api/vhosts/{VH}").status_code == 404
ok("teardown: purge, delete queue, delete vhost")
print("requests helpers: all as expected")
