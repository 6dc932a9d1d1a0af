#!/usr/bin/env bash
# benches/startup.sh [BINARY] — start-to-ready time and idle RSS of Warren
# started through its container entrypoint (docker/entrypoint.sh, with the
# image's conf.d defaults, a rabbitmq.conf, a fresh /var/lib/rabbitmq each
# time), and of the reference RabbitMQ (Debian's rabbitmq-server through
# ../shared/tools/reference-rabbitmq, or $REFERENCE_RABBITMQ, on AMQP port
# 5694), side by side.
#   ready = from spawn until the AMQP port accepts a TCP connection (polled
#           every 0.2 ms); for Warren also until the "Server startup complete"
#           line is in its log;
#   idle RSS = VmRSS 2 s after ready (for RabbitMQ: every process of the
#           node's session: beam.smp, erl_child_setup, inet_gethost...).
# Medians of RUNS starts for Warren (default 10; 0 skips it), REF_RUNS for
# RabbitMQ (default 1; 0 skips it). Runs as root in a private mount namespace
# (tmpfs over /etc/rabbitmq and /var/lib/rabbitmq; the host's are untouched).
# A benchmark, not a test: it never fails on a number.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

if [[ ${1:-} != --inside ]]; then
  BIN=$(realpath "${1:-$root/target/release/warren}")
  [[ -x $BIN ]] || { echo "startup: no binary at $BIN" >&2; exit 2; }
  created=()
  for d in /etc/rabbitmq /var/lib/rabbitmq; do
    [[ -e $d ]] || { mkdir "$d" && created+=("$d"); }
  done
  remove_created() {
    for d in ${created[@]+"${created[@]}"}; do rmdir "$d" 2>/dev/null || true; done
    created=()
  }
  trap remove_created EXIT
  [[ ${RUNS:-10} -gt 0 ]] && WARREN_BIN=$BIN unshare --mount --propagation private bash "$0" --inside
  remove_created
  if [[ ${REF_RUNS:-1} -gt 0 ]]; then
    # RabbitMQ runs outside the namespace: its own files live under /tmp.
    # Installed (and its setup checked) by the reference script, untimed; then
    # started here the way that script starts it, minus its rabbitmqctl calls
    # (each one boots an Erlang VM), so the time is the node's own.
    timeout 600 bash "${REFERENCE_RABBITMQ:-$root/../shared/tools/reference-rabbitmq}" start 5694 >/dev/null
    bash "${REFERENCE_RABBITMQ:-$root/../shared/tools/reference-rabbitmq}" stop 5694 >/dev/null
    python3 - "${REF_RUNS:-1}" <<'EOF'
import os, shutil, signal, socket, statistics, subprocess, sys, time
runs, port = int(sys.argv[1]), 5694
node, base = f"bench{port}@localhost", f"/tmp/warren-startup-bench-rabbitmq-{port}"

def accepting():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
        return True
    except OSError:
        return False

def session_rss_kib(sid):
    total = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.getsid(int(p)) != sid:
                continue
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total

readies, rsss = [], []
for _ in range(runs):
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    with open(f"{base}/rabbitmq.conf", "w") as f:
        f.write(f"listeners.tcp.default = 127.0.0.1:{port}\nmanagement.tcp.ip = 127.0.0.1\n"
                f"management.tcp.port = {port + 10000}\nloopback_users = none\n")
    with open(f"{base}/enabled_plugins", "w") as f:
        f.write("[rabbitmq_management].\n")
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", base], check=False)
    env = dict(os.environ, RABBITMQ_NODENAME=node, RABBITMQ_NODE_PORT=str(port), RABBITMQ_DIST_PORT=str(port + 20000),
               RABBITMQ_CONFIG_FILE=f"{base}/rabbitmq", RABBITMQ_ENABLED_PLUGINS_FILE=f"{base}/enabled_plugins",
               RABBITMQ_MNESIA_BASE=f"{base}/mnesia", RABBITMQ_LOG_BASE=f"{base}/log", RABBITMQ_PID_FILE=f"{base}/pid")
    t0 = time.monotonic()
    proc = subprocess.Popen(["rabbitmq-server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while not accepting():
        if time.monotonic() - t0 > 120:
            os.killpg(proc.pid, signal.SIGKILL)
            sys.exit("RabbitMQ did not start")
        time.sleep(0.0002)
    readies.append((time.monotonic() - t0) * 1000)
    time.sleep(2)
    # The node's session (Debian's wrapper starts beam under another user):
    # found from the process that listens on the port.
    ss = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    beam = int(ss.split("pid=")[1].split(",")[0])
    rsss.append(session_rss_kib(os.getsid(beam)) / 1024)
    subprocess.run(["rabbitmqctl", "-n", node, "stop"], capture_output=True, timeout=60)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(1)
shutil.rmtree(base, ignore_errors=True)
print(f"rabbitmq: start to AMQP port accepting {statistics.median(readies):.0f} ms "
      f"(min {min(readies):.0f}, max {max(readies):.0f}), idle RSS {statistics.median(rsss):.1f} MiB (median of {runs})")
EOF
  fi
  exit 0
fi

# ---- inside the private namespace ----
work=$(mktemp -d)
trap 'umount /etc/rabbitmq /var/lib/rabbitmq 2>/dev/null; rm -rf "$work"' EXIT
mount -t tmpfs tmpfs /etc/rabbitmq
mount -t tmpfs tmpfs /var/lib/rabbitmq
mkdir -p "$work/bin" /etc/rabbitmq/conf.d
ln -s "$WARREN_BIN" "$work/bin/warren"
cp "$root/docker/entrypoint.sh" "$work/bin/docker-entrypoint.sh"
cp "$root/docker/10-defaults.conf" /etc/rabbitmq/conf.d/
python3 - "$work" "${RUNS:-10}" <<'EOF'
import os, shutil, socket, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]

def accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
        return True
    except OSError:
        return False

modes = {
    "warren (entrypoint)": [f"{work}/bin/docker-entrypoint.sh"],
    # The same binary and rabbitmq.conf without the entrypoint: what the script costs.
    "warren (binary, no entrypoint)": [f"{work}/bin/warren", "--config", "/etc/rabbitmq/rabbitmq.conf"],
}
results = {m: ([], [], []) for m in modes}
for i in range(runs):
    for mode, argv in modes.items():
        ports, logs, rsss = results[mode]
        amqp, http, prom = free_port(), free_port(), free_port()
        with open("/etc/rabbitmq/rabbitmq.conf", "w") as f:
            f.write(f"management.tcp.port = {http}\nprometheus.tcp.port = {prom}\n")
        for entry in os.listdir("/var/lib/rabbitmq"):
            p = os.path.join("/var/lib/rabbitmq", entry)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        env = {"PATH": f"{work}/bin:/usr/bin:/bin", "HOME": "/var/lib/rabbitmq", "RABBITMQ_NODE_PORT": str(amqp),
               "WARREN_BIND": "127.0.0.1", "TMPDIR": work, "RABBITMQ_DEFAULT_USER": "u", "RABBITMQ_DEFAULT_PASS": "p",
               "WARREN_DATA_DIR": "/var/lib/rabbitmq"}
        log_path = f"{work}/warren-{i}.log"
        with open(log_path, "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
            port_ms = log_ms = None
            while port_ms is None or log_ms is None:
                now = time.monotonic()
                if now - t0 > 10:
                    sys.exit(f"Warren did not start; see {log_path}")
                if port_ms is None and accepting(amqp):
                    port_ms = (now - t0) * 1000
                if log_ms is None and b"Server startup complete" in open(log_path, "rb").read():
                    log_ms = (now - t0) * 1000
                time.sleep(0.0002)
        time.sleep(2)
        with open(f"/proc/{proc.pid}/status") as f:
            rsss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024)
        proc.terminate()
        proc.wait(timeout=10)
        ports.append(port_ms)
        logs.append(log_ms)
for mode, (ports, logs, rsss) in results.items():
    print(f"{mode}: start to AMQP port accepting {statistics.median(ports):.1f} ms "
          f"(min {min(ports):.1f}, max {max(ports):.1f}), to the log line {statistics.median(logs):.1f} ms, "
          f"idle RSS {statistics.median(rsss):.1f} MiB (median of {runs})")
EOF
