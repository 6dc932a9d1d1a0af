#!/usr/bin/env python3
"""`GET /api/queues?page=1&page_size=100` with N queues, Warren beside the
reference RabbitMQ: median wall time per request and broker CPU per request
(utime+stime from /proc over the whole batch). A benchmark, not a test.

    benches/queues_page.py WARREN_BINARY [N] [REQUESTS]   (default 10000, 20)

Starts Warren in memory on free ports, uses the running reference RabbitMQ
(127.0.0.1:5673, management 15673; `reference-rabbitmq start`), declares N
queues on each over AMQP (pika), then times the page requests, and also one
unpaged `GET /api/queues`. Deletes its queues from RabbitMQ at the end."""
import base64, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request
import pika

BIN, N, REQ = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000, int(sys.argv[3]) if len(sys.argv) > 3 else 20
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def get(url):
    req = urllib.request.Request(url, headers={"Authorization": AUTH})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def declare(port, n, prefix):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    ch = c.channel()
    t = time.perf_counter()
    for i in range(n):
        ch.queue_declare(f"{prefix}{i:06}")
    dt = time.perf_counter() - t
    c.close()
    return dt


def measure(name, http, pid, prefix):
    page = f"{http}/api/queues?page=1&page_size=100&name={prefix}"
    get(page)  # warm
    times = []
    c0 = cpu_seconds(pid)
    for _ in range(REQ):
        dt, size = get(page)
        times.append(dt)
    cpu = (cpu_seconds(pid) - c0) / REQ
    all_dt, all_size = get(f"{http}/api/queues")
    return name, statistics.median(times), cpu, all_dt, all_size


def rabbit_pid():
    """The process listening on the reference's AMQP port (its beam.smp)."""
    out = subprocess.run(["ss", "-ltnpH", "sport = :5673"], capture_output=True, text=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


def main():
    d = tempfile.mkdtemp(prefix="warren-page-")
    amqp, http = free_port(), free_port()
    w = subprocess.Popen([BIN, "--bind", "127.0.0.1", "--port", str(amqp), "--management-port", str(http),
                          "--prometheus-port", "0", "--in-memory", "--log-level", "error"])
    prefix = f"page-{os.getpid()}-"
    try:
        for _ in range(200):
            try:
                get(f"http://127.0.0.1:{http}/api/overview"); break
            except Exception:
                time.sleep(0.05)
        dw = declare(amqp, N, prefix)
        dr = declare(5673, N, prefix)
        time.sleep(6)  # RabbitMQ's stats collection interval, so its listing has every queue
        rows = [measure("Warren", f"http://127.0.0.1:{http}", w.pid, prefix),
                measure("RabbitMQ 3.10", "http://127.0.0.1:15673", rabbit_pid(), prefix)]
        print(f"{N} queues (declared in {dw:.1f} s on Warren, {dr:.1f} s on RabbitMQ); {REQ} requests each\n")
        print("| broker | page of 100: median ms | broker CPU ms / request | all queues: ms | all queues: bytes |")
        print("|---|---:|---:|---:|---:|")
        for name, med, cpu, all_dt, size in rows:
            print(f"| {name} | {med*1000:.1f} | {cpu*1000:.1f} | {all_dt*1000:.0f} | {size} |")
        print(f"\nratios (RabbitMQ / Warren): page time {rows[1][1]/rows[0][1]:.1f}x, CPU {rows[1][2]/max(rows[0][2],1e-9):.1f}x")
    finally:
        w.kill(); w.wait()
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5673))
        ch = c.channel()
        for i in range(N):
            ch.queue_delete(f"{prefix}{i:06}")
        c.close()


main()
