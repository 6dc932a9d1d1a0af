"""Tutorial 2 "Work Queues", worker: fair dispatch with prefetch_count=1 and
manual acks.

Task bodies:
  "<name>...."  work for 0.1s per dot (the tutorial's second per dot, shrunk)
  "hold:<name>" work until the driver writes "release" to our stdin; this
                lets the driver keep a worker busy for exactly as long as it
                needs, instead of guessing durations
  "stop"        cancel our consumer, ack, and exit

Usage: worker.py QUEUE
"""

import sys
import time

from harness import connect, emit, read_command, run_role, text

SECONDS_PER_DOT = 0.1


def main() -> None:
    queue = sys.argv[1]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    # At most one unacked task per worker: a busy worker gets nothing more.
    channel.basic_qos(prefetch_count=1)

    def callback(ch, method, properties, body):
        task = text(body)
        emit("started", task=task, redelivered=method.redelivered)
        if task == "stop":
            # Cancel before acking: once the ack frees our prefetch slot the
            # broker could otherwise hand us the other worker's "stop" too.
            ch.basic_cancel(consumer_tag)
            ch.basic_ack(delivery_tag=method.delivery_tag)
            ch.stop_consuming()
            return
        if task.startswith("hold:"):
            command = read_command()
            if command != "release":
                raise SystemExit(f"expected 'release' on stdin, got {command!r}")
        else:
            time.sleep(task.count(".") * SECONDS_PER_DOT)
        emit("done", task=task)
        ch.basic_ack(delivery_tag=method.delivery_tag)

    consumer_tag = channel.basic_consume(queue=queue, on_message_callback=callback)
    emit("ready")
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    run_role(main)
