"""Tutorial 1 "Hello World!", consumer: receive one message from a named queue.

Usage: receive.py QUEUE
"""

import sys

from harness import connect, emit, run_role, text


def main() -> None:
    queue = sys.argv[1]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue)

    def callback(ch, method, properties, body):
        emit("received", body=text(body), routing_key=method.routing_key,
             redelivered=method.redelivered)
        ch.stop_consuming()  # the tutorial runs forever; we stop after one

    channel.basic_consume(queue=queue, on_message_callback=callback, auto_ack=True)
    emit("ready")
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    run_role(main)
