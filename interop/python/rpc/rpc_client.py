"""Tutorial 6 "RPC", client: send fib(n) requests with reply_to pointing at
an exclusive server-named callback queue and a fresh correlation_id each,
and match replies to requests by correlation_id.

First one call at a time, as in the tutorial; then all of BURST at once, so
replies to several outstanding requests must be told apart by
correlation_id alone.

Usage: rpc_client.py QUEUE --sequential N... --burst N...
"""

import sys
import uuid

import pika

from harness import connect, emit, run_role, text


class FibonacciRpcClient:
    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.connection = connect()
        self.channel = self.connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue,
                                   on_message_callback=self.on_response, auto_ack=True)
        self.responses: dict[str, int] = {}  # correlation_id -> answer
        self.pending: set[str] = set()

    def on_response(self, ch, method, props, body):
        if props.correlation_id not in self.pending:
            # The tutorial silently drops these; we report them so the
            # driver can fail on a reply nobody asked for.
            emit("stray_reply", correlation_id=props.correlation_id, body=text(body))
            return
        self.pending.discard(props.correlation_id)
        self.responses[props.correlation_id] = int(text(body))

    def send(self, n: int) -> str:
        correlation_id = str(uuid.uuid4())
        self.pending.add(correlation_id)
        self.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            properties=pika.BasicProperties(reply_to=self.callback_queue,
                                            correlation_id=correlation_id),
            body=str(n).encode(),
        )
        return correlation_id

    def wait_for(self, correlation_ids: list[str]) -> None:
        # As in the tutorial, block until the replies are in (run_role's
        # deadline ends the process if they never come).
        while any(c not in self.responses for c in correlation_ids):
            self.connection.process_data_events(time_limit=None)


def main() -> None:
    args = sys.argv[1:]
    queue = args[0]
    split = args.index("--burst")
    sequential = [int(n) for n in args[args.index("--sequential") + 1:split]]
    burst = [int(n) for n in args[split + 1:]]

    client = FibonacciRpcClient(queue)
    emit("ready", callback_queue=client.callback_queue)
    for n in sequential:
        correlation_id = client.send(n)
        client.wait_for([correlation_id])
        emit("result", n=n, result=client.responses[correlation_id],
             correlation_id=correlation_id, mode="sequential")

    ids = [client.send(n) for n in burst]
    client.wait_for(ids)
    for n, correlation_id in zip(burst, ids):
        emit("result", n=n, result=client.responses[correlation_id],
             correlation_id=correlation_id, mode="burst")
    client.connection.close()


if __name__ == "__main__":
    run_role(main)
