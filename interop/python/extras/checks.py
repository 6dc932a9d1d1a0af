"""Extras, consumer: protocol behaviour beyond the tutorials, each reported
as an 'observed' event for the driver to judge.

  * basic_get returns messages in order with the remaining message count,
    and None on an empty queue;
  * basic_nack(requeue=True) puts a message back, flagged redelivered;
  * a passive declare of a missing queue closes the channel with 404
    (ChannelClosedByBroker) while the connection stays open and usable.

Usage: checks.py QUEUE    (expects the messages "first" and "second" there)
"""

import sys

import pika.exceptions

from harness import connect, emit, run_role, text, unique


def observe_get(channel, queue: str, name: str, expect_message: bool = True):
    method, properties, body = channel.basic_get(queue=queue, auto_ack=False)
    if method is None:
        emit("observed", name=name, body=None)
        if expect_message:
            sys.exit(0)  # nothing to ack/nack; the driver reports the gap
    else:
        emit("observed", name=name, body=text(body), redelivered=method.redelivered,
             message_count=method.message_count)
    return method


def main() -> None:
    queue = sys.argv[1]
    connection = connect()
    channel = connection.channel()

    method = observe_get(channel, queue, "get-1")
    channel.basic_ack(method.delivery_tag)
    method = observe_get(channel, queue, "get-2")
    channel.basic_nack(method.delivery_tag, requeue=True)
    method = observe_get(channel, queue, "get-after-nack")
    channel.basic_ack(method.delivery_tag)
    observe_get(channel, queue, "get-empty", expect_message=False)

    missing = unique("missing")
    try:
        channel.queue_declare(queue=missing, passive=True)
        emit("observed", name="passive-missing", raised=None)
    except pika.exceptions.ChannelClosedByBroker as error:
        emit("observed", name="passive-missing", raised="ChannelClosedByBroker",
             reply_code=error.reply_code, reply_text=error.reply_text)
    emit("observed", name="after-404", channel_open=channel.is_open,
         connection_open=connection.is_open)

    # The connection must still work: a new channel can declare and use a queue.
    channel = connection.channel()
    scratch = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.basic_publish(exchange="", routing_key=scratch, body=b"still works")
    method = None
    for _ in range(50):  # the publish is async; give it a moment to land
        method, _, body = channel.basic_get(queue=scratch, auto_ack=True)
        if method is not None:
            break
        connection.sleep(0.05)
    emit("observed", name="new-channel", body=text(body) if method else None)
    connection.close()


if __name__ == "__main__":
    run_role(main)
