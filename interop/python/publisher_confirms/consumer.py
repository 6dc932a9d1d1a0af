"""Tutorial 7 "Publisher Confirms", consumer: started only after the producer
has exited, it reads what the broker stored for it, acking each message,
until the producer's end marker.

Usage: consumer.py QUEUE
"""

import sys

from harness import END_MARKER, connect, emit, run_role, text


def main() -> None:
    queue = sys.argv[1]
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.basic_qos(prefetch_count=50)

    def callback(ch, method, properties, body):
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if body == END_MARKER:
            emit("end")
            ch.stop_consuming()
            return
        emit("received", body=text(body), persistent=properties.delivery_mode == 2)

    channel.basic_consume(queue=queue, on_message_callback=callback)
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    run_role(main)
