#!/usr/bin/env python3
"""Differential test runner: every scenario against broker A and broker B.

    DIFF_A_URL   reference broker (default amqp://guest:guest@127.0.0.1:5673/)
    DIFF_B_URL   broker under test (required; run.sh sets it to Warren)
    DIFF_A_NAME / DIFF_B_NAME   labels used in diffs (default rabbitmq / warren)

Usage: diff.py [--list] [--show] [--repeat N] [--jobs N] [PATTERN...]
  PATTERN    run only scenarios whose name contains one of the patterns
  --show     print both observation transcripts, not only the diff
  --list     list the scenario names and exit
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import scenarios  # noqa: E402,F401  (registers the scenarios)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("patterns", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("DIFF_JOBS", "4")),
                    help="scenarios run concurrently (each on its own resources)")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("DIFF_BUDGET", "170")),
                    help="stop starting scenarios after this many seconds")
    args = ap.parse_args()

    selected = [s for s in harness.SCENARIOS
                if not args.patterns or any(p in s[0] for p in args.patterns)]
    names = [s[0] for s in harness.SCENARIOS]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        print(f"duplicate scenario names: {sorted(dups)}", file=sys.stderr)
        return 2
    if args.list:
        for s in selected:
            print(s[0])
        return 0

    url_a = os.environ.get("DIFF_A_URL", "amqp://guest:guest@127.0.0.1:5673/")
    url_b = os.environ.get("DIFF_B_URL")
    if not url_b:
        print("DIFF_B_URL is not set (run.sh sets it)", file=sys.stderr)
        return 2
    name_a = os.environ.get("DIFF_A_NAME", "rabbitmq")
    name_b = os.environ.get("DIFF_B_NAME", "warren")

    known = load_known_differences()
    passed = failed = expected = 0
    started = time.monotonic()
    work = [s for _ in range(args.repeat) for s in selected]

    def run(item):
        name, fn, timeout, _tags = item
        if time.monotonic() - started > args.budget:
            return None, None, 0.0
        t0 = time.monotonic()
        a, b = harness.run_scenario(fn, url_a, url_b, timeout)
        return a, b, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run, item) for item in work]
        for (name, *_rest), fut in zip(work, futures):
            a, b, dt = fut.result()
            if a is None:
                failed += 1
                print(f"FAIL {name} (not run: suite budget of {args.budget:.0f}s spent)", flush=True)
                continue
            if name in known:
                if a == b:
                    failed += 1
                    print(f"FAIL {name}: now matches RabbitMQ; remove it from known_differences.txt", flush=True)
                else:
                    expected += 1
                    print(f"KNOWN {name} ({known[name]})", flush=True)
                continue
            if a == b:
                passed += 1
                print(f"PASS {name} ({dt:.2f}s)", flush=True)
                if args.show:
                    for line in a:
                        print(f"    {line}")
                continue
            failed += 1
            print(f"FAIL {name} ({dt:.2f}s)")
            if args.show:
                print(f"  --- {name_a}")
                for line in a:
                    print(f"    {line}")
                print(f"  --- {name_b}")
                for line in b:
                    print(f"    {line}")
            for line in harness.diff_lines(a, b, name_a, name_b):
                print(f"    {line}")
            sys.stdout.flush()
    if expected:
        print(f"{expected} known differences (interop/diff/known_differences.txt)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def load_known_differences() -> dict:
    """Scenarios where Warren differs from RabbitMQ today, each with why.
    They still run: one that starts to match fails until it is removed."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_differences.txt")
    known = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, why = line.partition("#")
            known[name.strip()] = why.strip() or "no reason given"
    return known


if __name__ == "__main__":
    sys.exit(main())
