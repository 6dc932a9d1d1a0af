"""Tutorial 4 "Routing", producer: publish log messages to a direct exchange
with the severity as routing key. Publisher confirms are on for the same
reason as in emit_log.py (the driver's end markers must come after).

Usage: emit_log_direct.py EXCHANGE SEVERITY:MESSAGE...
"""

import sys

from harness import connect, emit, run_role


def main() -> None:
    exchange, entries = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="direct")
    channel.confirm_delivery()
    for entry in entries:
        severity, message = entry.split(":", 1)
        channel.basic_publish(exchange=exchange, routing_key=severity, body=message.encode())
        emit("sent", severity=severity, body=message)
    connection.close()


if __name__ == "__main__":
    run_role(main)
