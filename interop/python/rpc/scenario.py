"""Tutorial 6: an RPC server process answers fib(n) requests from a client
process; replies travel via reply_to and are matched by correlation_id."""

from harness import check, cleanup, finish_all, run_scenario, spawn, unique

SEQUENTIAL = [0, 1, 2, 10, 30]
BURST = [5, 20, 7, 40, 1, 15]  # several outstanding at once


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main() -> None:
    queue = unique("rpc_queue")
    try:
        server = spawn("rpc_server.py", "rpc_server.py", queue, str(len(SEQUENTIAL) + len(BURST)))
        server.expect("ready")
        client = spawn("rpc_client.py", "rpc_client.py", queue,
                       "--sequential", *map(str, SEQUENTIAL), "--burst", *map(str, BURST))
        callback_queue = client.expect("ready")["callback_queue"]
        finish_all(client, server)

        results = client.all("result")
        check([r["n"] for r in results] == SEQUENTIAL + BURST,
              f"client got answers for {[r['n'] for r in results]}")
        for r in results:
            check(r["result"] == fib(r["n"]),
                  f"fib({r['n']}) answered {r['result']}, expected {fib(r['n'])} ({r['mode']})")
        check(not client.all("stray_reply"),
              f"replies with unknown correlation ids: {client.all('stray_reply')}")

        # The server must have seen exactly the properties the client sent.
        requests = server.all("request")
        sent_ids = sorted(r["correlation_id"] for r in results)
        check(sorted(r["correlation_id"] for r in requests) == sent_ids,
              "correlation ids seen by the server differ from those the client sent")
        check(len(set(sent_ids)) == len(sent_ids), "correlation ids were not unique")
        check(all(r["reply_to"] == callback_queue for r in requests),
              f"reply_to seen by the server is not the client's queue {callback_queue}")
    finally:
        cleanup(queues=[queue])


run_scenario(main)
