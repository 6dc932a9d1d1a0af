#!/usr/bin/env python3
"""Time to declare N durable queues, one after the other on one channel,
against a broker binary with a fresh data directory on the real disk.

    benches/declares.py BINARY N [N...]     e.g. target/release/warren 1000 5000 10000

Prints one line per N: seconds, declares/s. A benchmark, not a test."""
import os, shutil, subprocess, sys, tempfile, time
import pika

def run(binary, n):
    d = tempfile.mkdtemp(prefix="warren-declares-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    port_file = os.path.join(d, "port")
    p = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", "0", "--port-file", port_file,
                          "--data-dir", os.path.join(d, "data"), "--log-level", "error"])
    try:
        for _ in range(400):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.025)
        port = int(open(port_file).read())
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        ch = c.channel()
        t = time.perf_counter()
        for i in range(n):
            ch.queue_declare(f"q-{i:06}", durable=True)
        dt = time.perf_counter() - t
        c.close()
        return dt
    finally:
        p.kill(); p.wait()
        shutil.rmtree(d, ignore_errors=True)

binary = sys.argv[1]
for n in map(int, sys.argv[2:]):
    dt = run(binary, n)
    print(f"{os.path.basename(binary)} N={n}: {dt:.2f} s, {n/dt:.0f} declares/s", flush=True)
