"""Tutorial 5 "Topics", producer: publish messages to a topic exchange with
dotted routing keys. Publisher confirms are on for the same reason as in
emit_log.py (the driver's end markers must come after).

Usage: emit_log_topic.py EXCHANGE ROUTING_KEY...   (the body names its key)
"""

import sys

from harness import connect, emit, run_role


def main() -> None:
    exchange, routing_keys = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="topic")
    channel.confirm_delivery()
    for routing_key in routing_keys:
        body = f"message for {routing_key}"
        channel.basic_publish(exchange=exchange, routing_key=routing_key, body=body.encode())
        emit("sent", routing_key=routing_key, body=body)
    connection.close()


if __name__ == "__main__":
    run_role(main)
