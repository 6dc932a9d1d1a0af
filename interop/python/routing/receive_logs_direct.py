"""Tutorial 4 "Routing", subscriber: bind an exclusive server-named queue to
a direct exchange once per severity it wants.

Usage: receive_logs_direct.py EXCHANGE SEVERITY...
"""

import sys

from harness import connect, consume_until_end, run_role


def main() -> None:
    exchange, severities = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="direct")
    queue_name = channel.queue_declare(queue="", exclusive=True).method.queue
    for severity in severities:
        channel.queue_bind(exchange=exchange, queue=queue_name, routing_key=severity)
    consume_until_end(connection, channel, queue_name)
    connection.close()


if __name__ == "__main__":
    run_role(main)
