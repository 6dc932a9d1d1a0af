"""Tutorial 3 "Publish/Subscribe", producer: publish log messages to a fanout
exchange.

Unlike the tutorial we turn on publisher confirms, so when this process
exits every message has been routed; the driver relies on that to put its
end markers behind them.

Usage: emit_log.py EXCHANGE MESSAGE...
"""

import sys

from harness import connect, emit, run_role


def main() -> None:
    exchange, messages = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    channel.confirm_delivery()
    for message in messages:
        # The routing key is ignored by a fanout exchange.
        channel.basic_publish(exchange=exchange, routing_key="", body=message.encode())
        emit("sent", body=message)
    connection.close()


if __name__ == "__main__":
    run_role(main)
