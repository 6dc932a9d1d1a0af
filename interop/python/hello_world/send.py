"""Tutorial 1 "Hello World!", producer: publish one message to a named queue.

Usage: send.py QUEUE MESSAGE
"""

import sys

from harness import connect, emit, run_role


def main() -> None:
    queue, message = sys.argv[1], sys.argv[2]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    channel.basic_publish(exchange="", routing_key=queue, body=message.encode())
    emit("sent", body=message)
    # Like the tutorial, no confirms: a clean close must still deliver it.
    connection.close()


if __name__ == "__main__":
    run_role(main)
