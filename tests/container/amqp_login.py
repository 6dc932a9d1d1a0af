"""Log in over AMQP 0-9-1 as a client library would, with raw sockets only.

    python3 amqp_login.py PORT USER PASS VHOST

Exit 0 once connection.open-ok arrives, 1 with the reason otherwise (a
refused login is a connection.close, or the socket closing after start-ok).
"""

import socket
import struct
import sys


def shortstr(s):
    b = s.encode()
    return struct.pack("B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def method(class_id, method_id, args):
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def read_method(sock, buf):
    """The next method frame's (class, method, args); heartbeats are skipped."""
    while True:
        while len(buf) < 7:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed by the broker")
            buf += chunk
        ftype, _channel, size = struct.unpack(">BHI", bytes(buf[:7]))
        while len(buf) < 8 + size:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed by the broker")
            buf += chunk
        payload = bytes(buf[7 : 7 + size])
        del buf[: 8 + size]
        if ftype == 1:
            class_id, method_id = struct.unpack(">HH", payload[:4])
            return class_id, method_id, payload[4:]


def main():
    port, user, password, vhost = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = bytearray()
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    if read_method(sock, buf)[:2] != (10, 10):
        sys.exit("expected connection.start")
    response = b"\x00" + user.encode() + b"\x00" + password.encode()
    sock.sendall(method(10, 11, longstr(b"") + shortstr("PLAIN") + longstr(response) + shortstr("en_US")))
    try:
        class_id, method_id, args = read_method(sock, buf)
    except ConnectionError as e:
        sys.exit(f"login refused: {e}")
    if (class_id, method_id) == (10, 50):
        code = struct.unpack(">H", args[:2])[0]
        sys.exit(f"login refused: {code} {args[3 : 3 + args[2]].decode()}")
    if (class_id, method_id) != (10, 30):
        sys.exit(f"expected connection.tune, got {class_id}.{method_id}")
    channel_max, frame_max, _heartbeat = struct.unpack(">HIH", args[:8])
    sock.sendall(method(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
    sock.sendall(method(10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
    class_id, method_id, args = read_method(sock, buf)
    if (class_id, method_id) == (10, 50):
        code = struct.unpack(">H", args[:2])[0]
        sys.exit(f"vhost refused: {code} {args[3 : 3 + args[2]].decode()}")
    if (class_id, method_id) != (10, 41):
        sys.exit(f"expected connection.open-ok, got {class_id}.{method_id}")
    sock.sendall(method(10, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0)))
    sock.close()
    print(f"ok - AMQP login as {user} on vhost {vhost}")


if __name__ == "__main__":
    main()
