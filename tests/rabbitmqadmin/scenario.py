#!/usr/bin/env python3
"""The real rabbitmqadmin (Debian's rabbitmq-server package) against Warren.

Usage: scenario.py MANAGEMENT_PORT [RABBITMQADMIN]

Runs the everyday rabbitmqadmin verbs - list, declare, publish, get, purge,
delete, export, import - against a running broker's management API and checks
each answer. Exits non-zero on the first mismatch, printing what was run and
what came back. Works unchanged against RabbitMQ (the reference on 15673).
"""
import json
import os
import subprocess
import sys
import tempfile

PORT = sys.argv[1]
ADMIN = sys.argv[2] if len(sys.argv) > 2 else "rabbitmqadmin"
SUFFIX = str(os.getpid())
Q, X, USER, VHOST, POL = f"ra-q-{SUFFIX}", f"ra-x-{SUFFIX}", f"ra-u-{SUFFIX}", f"ra-v-{SUFFIX}", f"ra-p-{SUFFIX}"
steps = 0


def run(*args, expect_ok=True):
    global steps
    cmd = [ADMIN, "-H", "127.0.0.1", "-P", PORT, "-u", "guest", "-p", "guest", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if expect_ok and p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}\nexit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    steps += 1
    return p


def listed(kind, *extra):
    out = run("-f", "raw_json", "list", kind, *extra).stdout
    return json.loads(out) if out.strip() else []


def queue_messages(name):
    """The queue's message count; RabbitMQ's lags by its stats interval."""
    import time
    deadline = time.time() + 20
    while True:
        q = {q["name"]: q for q in listed("queues", "name", "messages")}.get(name, {})
        if q.get("messages") == 0 or time.time() > deadline:
            return q.get("messages")
        time.sleep(0.5)


def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")
    print(f"ok - {what}")


# Declarations.
run("declare", "vhost", f"name={VHOST}")
run("declare", "user", f"name={USER}", "password=pw", "tags=management")
run("declare", "permission", f"vhost={VHOST}", f"user={USER}", "configure=.*", "write=.*", "read=.*")
run("declare", "queue", f"name={Q}", "durable=true", 'arguments={"x-max-priority": 5}')
run("declare", "exchange", f"name={X}", "type=topic", "durable=true")
run("declare", "binding", f"source={X}", f"destination={Q}", "routing_key=orders.*")
run("declare", "policy", f"name={POL}", f"pattern=^{Q}$", 'definition={"max-length": 100}', "apply-to=queues")

# Lists see them.
check(any(v["name"] == VHOST for v in listed("vhosts")), "list vhosts shows the new vhost")
check(any(u["name"] == USER and u["tags"] in ("management", ["management"]) for u in listed("users")),
      "list users shows the new user with its tag")
queues = {q["name"]: q for q in listed("queues")}
check(Q in queues and queues[Q]["durable"] is True and queues[Q]["arguments"] == {"x-max-priority": 5},
      "list queues shows the queue as declared")
check(any(x["name"] == X and x["type"] == "topic" for x in listed("exchanges")), "list exchanges shows the topic exchange")
check(any(b["source"] == X and b["destination"] == Q and b["routing_key"] == "orders.*" for b in listed("bindings")),
      "list bindings shows the binding")
check(any(p["name"] == POL and p["definition"] == {"max-length": 100} for p in listed("policies")),
      "list policies shows the policy")
check(isinstance(listed("connections"), list), "list connections answers")
check(any(p["user"] == USER and p["vhost"] == VHOST for p in listed("permissions")), "list permissions shows the grant")
check("name" in run("list", "queues", "name", "messages").stdout, "the default table format renders")

# Publish through the exchange, get back, purge.
out = run("publish", f"exchange={X}", "routing_key=orders.new", "payload=hello rabbitmqadmin").stdout
check("Message published" in out, f"publish reports the message routed ({out.strip()})")
run("publish", f"exchange={X}", "routing_key=orders.old", "payload=second")
out = run("publish", f"exchange={X}", "routing_key=nowhere", "payload=lost").stdout
check("NOT routed" in out, f"an unroutable publish says so ({out.strip()})")
got = json.loads(run("-f", "raw_json", "get", f"queue={Q}", "ackmode=ack_requeue_true", "count=1").stdout)
check(got and got[0]["payload"] == "hello rabbitmqadmin" and got[0]["message_count"] == 1,
      "get returns the first message and the count left")
got = json.loads(run("-f", "raw_json", "get", f"queue={Q}", "ackmode=ack_requeue_false", "count=2").stdout)
check([m["payload"] for m in got] == ["hello rabbitmqadmin", "second"] and got[0]["redelivered"] is True,
      "get with ack_requeue_false takes both, the first marked redelivered")
run("publish", "routing_key=" + Q, "payload=to purge")
run("purge", "queue", f"name={Q}")
check(queue_messages(Q) == 0, "purge empties the queue")

# Export, delete, import back.
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "defs.json")
    run("export", path)
    defs = json.load(open(path))
    check(any(q["name"] == Q for q in defs["queues"]) and any(p["name"] == POL for p in defs["policies"]),
          "export writes the queue and the policy")
    run("delete", "binding", f"source={X}", f"destination={Q}", "destination_type=queue", "properties_key=orders.*")
    check(not any(b["source"] == X for b in listed("bindings")), "delete binding by properties key")
    run("delete", "queue", f"name={Q}")
    run("delete", "exchange", f"name={X}")
    run("delete", "policy", f"name={POL}")
    check(not any(q["name"] == Q for q in listed("queues")), "delete queue")
    run("import", path)
    check(any(q["name"] == Q for q in listed("queues")), "import brings the queue back")
    check(any(b["source"] == X and b["destination"] == Q for b in listed("bindings")), "and its binding")
    check(any(p["name"] == POL for p in listed("policies")), "and the policy")

# Clean up.
run("delete", "queue", f"name={Q}")
run("delete", "exchange", f"name={X}")
run("delete", "policy", f"name={POL}")
run("delete", "user", f"name={USER}")
run("delete", "vhost", f"name={VHOST}")
check(not any(v["name"] == VHOST for v in listed("vhosts")), "delete vhost")
print(f"rabbitmqadmin scenario: {steps} commands, all as expected")
