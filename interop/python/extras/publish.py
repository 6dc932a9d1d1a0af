"""Extras, producer: put a few messages into a queue (confirmed, so they are
there once this process exits).

Usage: publish.py QUEUE MESSAGE...
"""

import sys

from harness import connect, emit, run_role


def main() -> None:
    queue, messages = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    channel.confirm_delivery()
    for message in messages:
        channel.basic_publish(exchange="", routing_key=queue, body=message.encode())
    emit("published", count=len(messages))
    connection.close()


if __name__ == "__main__":
    run_role(main)
