"""Vhost and user limits (issue 12), set through each broker's management
API on a vhost and a user of the scenario's own, so that a shared reference
node's other users never meet them. RabbitMQ counts connections as its
tracking learns of them, so a scenario waits a moment after opening the
connection that reaches a limit."""
from harness import scenario


@scenario
def s_vhost_max_queues(t):
    v = t.vhost("v")
    t.limit("vhost", v, "max-queues", 1)
    ch = t.chan(t.connect(vhost=v))
    ch.queue_declare(t.name("q1"))
    ch.queue_declare(t.name("q1"))  # redeclaring is not a new queue
    with t.err():
        ch.queue_declare(t.name("q2"))


@scenario
def s_vhost_max_queues_zero(t):
    v = t.vhost("v")
    t.limit("vhost", v, "max-queues", 0)
    ch = t.chan(t.connect(vhost=v))
    with t.err():
        ch.queue_declare(t.name("q"))


@scenario
def s_vhost_max_connections(t):
    v = t.vhost("v")
    t.limit("vhost", v, "max-connections", 1)
    t.connect(vhost=v)
    t.sleep(0.5)
    with t.err():
        t.connect(vhost=v)


@scenario
def s_vhost_max_connections_zero(t):
    v = t.vhost("v")
    t.limit("vhost", v, "max-connections", 0)
    with t.err():
        t.connect(vhost=v)


@scenario
def s_vhost_limit_unknown_name(t):
    v = t.vhost("v")
    t.limit("vhost", v, "max-widgets", 1)


@scenario
def s_user_max_connections(t):
    u = t.user("u", "pw")
    v = t.vhost("v", users=(u,))
    t.limit("user", u, "max-connections", 1)
    t.connect(user=u, password="pw", vhost=v)
    t.sleep(0.5)
    with t.err():
        t.connect(user=u, password="pw", vhost=v)


@scenario
def s_user_max_channels(t):
    u = t.user("u", "pw")
    v = t.vhost("v", users=(u,))
    t.limit("user", u, "max-channels", 1)
    c = t.connect(user=u, password="pw", vhost=v)
    t.chan(c)
    t.sleep(0.5)
    with t.err():
        t.chan(c)
