"""Tutorial 6 "RPC", server: consume requests from a queue, compute fib(n),
and publish the answer to the request's reply_to queue with the request's
correlation_id.

Usage: rpc_server.py QUEUE REQUEST_COUNT   (exits after that many requests)
"""

import sys

import pika

from harness import connect, emit, run_role, text


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main() -> None:
    queue, request_count = sys.argv[1], int(sys.argv[2])
    connection = connect()
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    channel.basic_qos(prefetch_count=1)
    served = 0

    def on_request(ch, method, props, body):
        nonlocal served
        n = int(text(body))
        emit("request", n=n, reply_to=props.reply_to, correlation_id=props.correlation_id)
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(fib(n)).encode(),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)
        served += 1
        if served == request_count:
            ch.stop_consuming()

    channel.basic_consume(queue=queue, on_message_callback=on_request)
    emit("ready")
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    run_role(main)
