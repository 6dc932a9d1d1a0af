#!/usr/bin/env python3
"""Run every interop scenario against the broker at $AMQP_URL.

Scenarios are discovered per client folder: any interop/<lang>/ or
interop/<lang>/<client>/ holding an interop.toml manifest takes part, and
its scenarios are named "<lang>/<scenario>" or "<lang>/<client>/<scenario>".
The manifest says

    scenarios = "*/scenario.py"     # glob, relative to the folder; one
                                    # scenario per match, named after the
                                    # match's parent folder (or its stem if
                                    # it sits directly in the folder)
    scenarios = ["connect", "..."]  # or: a list of names, for one program
                                    # that runs each scenario by name
    command = ["...", "{scenario}"] # how to run one; "{dir}" = the folder,
                                    # "{scenario}" = the matched file (the
                                    # name, for a list), "{name}" = the name
    timeout = 45                    # optional, seconds per scenario
    setup = ["npm", "ci"]           # optional, run once (in the folder)
                                    # before that language's scenarios
    [env]                           # optional extra environment
    NAME = "value with {dir}"

A scenario passes when its command exits 0, and is skipped when it exits
77 (SKIP_EXIT: what it needs is not there, e.g. "skipped: no AMQPS_URL" for
a TLS scenario against a broker given without one); its last line is the
reason. Otherwise it failed and the last non-empty line it printed is the
reason. Each scenario runs in its own process group,
which is killed afterwards, so nothing it started outlives it.

Prints one PASS/FAIL/SKIP line per scenario and ends with "N passed, M
failed" (and ", K skipped" if any were); exits 1 if anything failed.

Usage: runner.py [--list] [--budget SECONDS] [--jobs N] [PATTERN...]
  PATTERN  run only scenarios whose name (e.g. python/rpc) contains it
  --jobs   run up to N scenarios at once (default 1); each line is printed
           when its scenario ends
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

INTEROP_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT_S = 60.0
# The exit status of a scenario that did not run (automake's convention).
SKIP_EXIT = 77
# Lines of a failing scenario's output shown under its FAIL line.
FAILURE_CONTEXT_LINES = 15

# Process groups of the scenarios running now, killed if we are stopped.
_running: set[int] = set()
_running_lock = threading.Lock()
_print_lock = threading.Lock()
_stopping = threading.Event()


@dataclass
class Language:
    name: str
    dir: Path
    command: list[str]
    timeout: float
    setup: list[str] | None
    env: dict[str, str] = field(default_factory=dict)
    scenario_glob: str | list[str] = ""

    def expand(self, value: str, scenario: "Scenario | None" = None) -> str:
        value = value.replace("{dir}", str(self.dir))
        if scenario is not None:
            value = value.replace("{name}", scenario.short_name)
            value = value.replace("{scenario}", str(scenario.path) if scenario.path
                                  else scenario.short_name)
        return value


@dataclass
class Scenario:
    name: str  # "<language>/<scenario>"
    short_name: str  # "<scenario>"
    path: Path | None  # None for a scenario named in a list
    language: Language

    @property
    def cwd(self) -> Path:
        return self.path.parent if self.path else self.language.dir


def load_languages() -> list[Language]:
    languages = []
    manifests = [*INTEROP_DIR.glob("*/interop.toml"), *INTEROP_DIR.glob("*/*/interop.toml")]
    for manifest in sorted(manifests):
        spec = tomllib.loads(manifest.read_text())
        languages.append(Language(
            name=manifest.parent.relative_to(INTEROP_DIR).as_posix(),
            dir=manifest.parent,
            command=list(spec["command"]),
            timeout=float(spec.get("timeout", DEFAULT_TIMEOUT_S)),
            setup=spec.get("setup"),
            env=dict(spec.get("env", {})),
            scenario_glob=spec["scenarios"],
        ))
    return languages


def discover(languages: list[Language]) -> list[Scenario]:
    scenarios = []
    for language in languages:
        if isinstance(language.scenario_glob, list):
            for short in language.scenario_glob:
                scenarios.append(Scenario(f"{language.name}/{short}", short, None, language))
            continue
        for path in sorted(language.dir.glob(language.scenario_glob)):
            short = path.parent.name if path.parent != language.dir else path.stem
            scenarios.append(Scenario(f"{language.name}/{short}", short, path, language))
    return scenarios


def last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run_process(command: list[str], cwd: Path, env: dict[str, str],
                timeout: float) -> tuple[int | None, str]:
    """Run a command in its own process group; returns (exit code or None on
    timeout, combined output). The whole group is killed at the end so a
    scenario's stray children cannot linger or hold the broker busy."""
    with _running_lock:
        if _stopping.is_set():
            return None, "stopped"
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        _running.add(proc.pid)
    try:
        try:
            output, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            code = None
    finally:
        # Also when we are being stopped ourselves (see main): a scenario in
        # its own session would not get our terminal's Ctrl-C.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with _running_lock:
            _running.discard(proc.pid)
    return code, output


def kill_running() -> None:
    with _running_lock:
        _stopping.set()
        for pid in list(_running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def run_setup(language: Language, env: dict[str, str], timeout: float) -> str | None:
    """Run a language's optional setup command; returns why it failed, or None."""
    if not language.setup:
        return None
    code, output = run_process([language.expand(a) for a in language.setup],
                               language.dir, env, timeout)
    return None if code == 0 else f"{language.name} setup failed: {last_line(output)}"


def report_failure(name: str, seconds: float, reason: str, output: str = "") -> None:
    context = [line for line in output.splitlines() if line.strip()][:-1]
    lines = [f"FAIL {name} ({seconds:.1f}s): {reason}",
             *(f"    | {line}" for line in context[-FAILURE_CONTEXT_LINES:])]
    with _print_lock:
        print("\n".join(lines), flush=True)


def run_scenario(scenario: Scenario, env: dict[str, str], deadline: float, budget: float) -> bool | None:
    """Run one scenario unless the suite's budget is spent; report it; True if
    it passed, None if it was skipped."""
    language = scenario.language
    remaining = deadline - time.monotonic()
    if remaining <= 1:
        report_failure(scenario.name, 0, f"not run: the suite's {budget:.0f}s budget is spent")
        return False
    timeout = min(language.timeout, remaining)
    command = [language.expand(a, scenario) for a in language.command]
    t0 = time.monotonic()
    code, output = run_process(command, scenario.cwd, env, timeout)
    seconds = time.monotonic() - t0
    if code == 0:
        with _print_lock:
            print(f"PASS {scenario.name} ({seconds:.1f}s)", flush=True)
        return True
    if code == SKIP_EXIT:
        with _print_lock:
            print(f"SKIP {scenario.name}: {last_line(output)}", flush=True)
        return None
    if code is None:
        report_failure(scenario.name, seconds, f"timed out after {timeout:.0f}s", output)
    else:
        report_failure(scenario.name, seconds, last_line(output), output)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", help="run only scenarios whose name contains one")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds for the whole run; scenarios not started by then fail "
                             "(default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="scenarios run at once (default: %(default)s)")
    args = parser.parse_args()
    # Turn SIGTERM (run.sh forwards its own stop this way) into SystemExit,
    # so run_process's cleanup kills the running scenario's processes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    scenarios = discover(load_languages())
    if args.patterns:
        scenarios = [s for s in scenarios if any(p in s.name for p in args.patterns)]
    if args.list:
        for scenario in scenarios:
            print(scenario.name)
        return 0
    if not scenarios:
        print("no scenarios matched", file=sys.stderr)
        print("0 passed, 0 failed")
        return 1
    if not os.environ.get("AMQP_URL"):
        print("AMQP_URL is not set; use interop/run.sh to start a broker", file=sys.stderr)
        return 2

    started = time.monotonic()
    deadline = started + args.budget
    passed = failed = skipped = 0
    # Setups first, in order (e.g. npm ci), each once for its language.
    setup_outcome: dict[str, str | None] = {}  # language -> reason, None if fine
    envs: dict[str, dict[str, str]] = {}
    runnable = []
    for scenario in scenarios:
        language = scenario.language
        if language.name not in envs:
            envs[language.name] = {**os.environ,
                                   **{k: language.expand(v) for k, v in language.env.items()}}
        if language.name not in setup_outcome:
            remaining = deadline - time.monotonic()
            setup_outcome[language.name] = (run_setup(language, envs[language.name], remaining)
                                            if remaining > 1 else None)
        if setup_outcome[language.name]:
            report_failure(scenario.name, 0, setup_outcome[language.name])
            failed += 1
        else:
            runnable.append(scenario)

    def run(scenario: Scenario) -> bool | None:
        return run_scenario(scenario, envs[scenario.language.name], deadline, args.budget)

    executor = ThreadPoolExecutor(max_workers=max(args.jobs, 1))
    try:
        for ok in executor.map(run, runnable):
            if ok is None:
                skipped += 1
            else:
                passed += ok
                failed += not ok
    finally:
        # Normally a no-op; when we are stopped (SIGTERM/Ctrl-C), the
        # scenarios still running must not outlive us.
        executor.shutdown(wait=False, cancel_futures=True)
        kill_running()

    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
