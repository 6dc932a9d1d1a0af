"""Tutorial 5 "Topics", subscriber: bind an exclusive server-named queue to
a topic exchange with one or more binding patterns ("*" is exactly one
word, "#" is zero or more words).

Usage: receive_logs_topic.py EXCHANGE BINDING_KEY...
"""

import sys

from harness import connect, consume_until_end, run_role


def main() -> None:
    exchange, binding_keys = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="topic")
    queue_name = channel.queue_declare(queue="", exclusive=True).method.queue
    for binding_key in binding_keys:
        channel.queue_bind(exchange=exchange, queue=queue_name, routing_key=binding_key)
    consume_until_end(connection, channel, queue_name)
    connection.close()


if __name__ == "__main__":
    run_role(main)
