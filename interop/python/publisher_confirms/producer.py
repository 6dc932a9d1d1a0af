"""Tutorial 7 "Publisher Confirms", producer: publish messages one at a time
on a confirming channel (pika's BlockingChannel waits for each ack and
raises if the broker nacks or returns it).

Then checks the unroutable cases on the same channel:
  * mandatory=True to a key no queue is bound to: the broker returns the
    message before acking it, and pika raises UnroutableError;
  * the same without mandatory: silently dropped but still confirmed;
  * the channel is still usable afterwards (the end marker goes through).

Usage: producer.py QUEUE COUNT
"""

import sys

import pika
import pika.exceptions

from harness import END_MARKER, connect, emit, run_role, unique


def main() -> None:
    queue, count = sys.argv[1], int(sys.argv[2])
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.confirm_delivery()

    for i in range(count):
        channel.basic_publish(
            exchange="", routing_key=queue, body=f"message {i}".encode(),
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
            mandatory=True,
        )
    emit("confirmed", count=count)

    nowhere = unique("no-such-queue")
    try:
        channel.basic_publish(exchange="", routing_key=nowhere, body=b"lost", mandatory=True)
        emit("unroutable", raised=None)
    except pika.exceptions.UnroutableError as error:
        returned = [m.body.decode() for m in error.messages]
        emit("unroutable", raised="UnroutableError", returned=returned)

    # Not mandatory: nothing to return, so basic_publish just returns.
    channel.basic_publish(exchange="", routing_key=nowhere, body=b"dropped")
    emit("dropped_ok")

    channel.basic_publish(exchange="", routing_key=queue, body=END_MARKER)
    emit("end_sent")
    connection.close()


if __name__ == "__main__":
    run_role(main)
