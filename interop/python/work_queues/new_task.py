"""Tutorial 2 "Work Queues", producer: publish tasks to a durable queue as
persistent messages. In the tutorial each dot in a task is a second of
work; our workers scale that down (see worker.py).

Usage: new_task.py QUEUE TASK...
"""

import sys

import pika

from harness import connect, emit, run_role


def main() -> None:
    queue, tasks = sys.argv[1], sys.argv[2:]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    for task in tasks:
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=task.encode(),
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        )
        emit("sent", task=task)
    connection.close()


if __name__ == "__main__":
    run_role(main)
