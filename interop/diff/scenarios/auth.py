"""Logins and their refusals (issue 12): what a client sees when its
credentials, mechanism or vhost are wrong, the same from Warren as from
RabbitMQ. Every connect below announces authentication_failure_close, so a
refusal is a Connection.Close with a code and text, not a dropped socket."""
import struct

from harness import scenario


def amqplain(login: str, password: str) -> bytes:
    """AMQPLAIN's response: a field table without its length prefix."""
    out = b""
    for k, v in (("LOGIN", login), ("PASSWORD", password)):
        out += bytes([len(k)]) + k.encode() + b"S" + struct.pack(">I", len(v)) + v.encode()
    return out


@scenario
def s_login_mechanisms_offered(t):
    c = t.conn
    t.rec("mechanisms", c.start.mechanisms, "locales", c.start.locales,
          "version", c.start.version_major, c.start.version_minor)


@scenario
def s_login_wrong_password(t):
    with t.err():
        t.connect(password="not-the-password")


@scenario
def s_login_unknown_user(t):
    with t.err():
        t.connect(user="no-such-user-zz", password="guest")


@scenario
def s_login_empty_password(t):
    with t.err():
        t.connect(password="")


@scenario
def s_login_amqplain(t):
    c = t.connect(mechanism="AMQPLAIN", response=amqplain("guest", "guest"))
    t.rec("open-ok", c.open_ok is not None)
    with t.err():
        t.connect(mechanism="AMQPLAIN", response=amqplain("guest", "wrong"))


@scenario
def s_login_malformed_plain_response(t):
    with t.err():
        t.connect(mechanism="PLAIN", response=b"guest-without-separators")


@scenario
def s_login_unknown_vhost(t):
    with t.err():
        t.connect(vhost="no-such-vhost-zz")


@scenario
def s_login_unknown_mechanism(t):
    with t.err():
        t.connect(mechanism="CRAM-MD5", response=b"guest")


@scenario
def s_login_external_on_a_plain_listener(t):
    with t.err():
        t.connect(mechanism="EXTERNAL", response=b"")
