"""Tutorial 2: one task queue, two worker processes with prefetch_count=1.

How fair dispatch is checked without depending on timing: the first task
is a "hold" task that keeps whichever worker gets it busy until the driver
releases it, and the driver only releases it once the *other* worker has
finished every remaining task. With prefetch_count=1 the busy worker holds
one unacked message and the broker must send everything else to the free
worker. If the broker ignored the prefetch limit (round-robin), part of the
light tasks would sit behind the held task and the free worker could never
finish them all, so the wait fails instead of passing by luck.
"""

from collections import Counter

from harness import ScenarioFailed, check, cleanup, finish_all, run_scenario, spawn, unique, wait_until

HELD = "hold:big-task"
# Different durations (0.1s per dot), so the free worker's pace varies.
LIGHT = ["t1.", "t2..", "t3", "t4...", "t5.", "t6..", "t7", "t8.", "t9", "t10.."]


def done_tasks(worker):
    return [e["task"] for e in worker.all("done")]


def main() -> None:
    queue = unique("task_queue")
    try:
        workers = [spawn("worker-1", "worker.py", queue), spawn("worker-2", "worker.py", queue)]
        for worker in workers:
            worker.expect("ready")  # both consuming before any task exists

        spawn("new_task.py", "new_task.py", queue, HELD, *LIGHT).finish()

        wait_until(workers, lambda: any(e["task"] == HELD for w in workers for e in w.all("started")),
                   "a worker started the held task")
        busy = next(w for w in workers if any(e["task"] == HELD for e in w.all("started")))
        free = next(w for w in workers if w is not busy)

        try:
            wait_until([free], lambda: sorted(done_tasks(free)) == sorted(LIGHT),
                       f"{free.name} finished all {len(LIGHT)} light tasks", timeout=10)
        except ScenarioFailed as waited:
            raise ScenarioFailed(
                f"fair dispatch: while {busy.name} was busy, {free.name} finished only "
                f"{len(done_tasks(free))} of {len(LIGHT)} other tasks; the rest were "
                f"dispatched to the busy worker despite prefetch_count=1 ({waited})") from None

        busy.send("release")
        busy.expect("done")
        # One "stop" each: a worker cancels before acking its stop, so it
        # cannot take the second one.
        spawn("new_task.py stop", "new_task.py", queue, "stop", "stop").finish()
        finish_all(*workers)

        all_done = Counter(done_tasks(workers[0]) + done_tasks(workers[1]))
        expected = Counter([HELD, *LIGHT])
        check(all_done == expected,
              f"tasks done {dict(all_done)} != each task once {dict(expected)}")
        check(done_tasks(busy) == [HELD],
              f"busy worker also ran {done_tasks(busy)[1:]}: it got tasks while busy")
        check(all(done_tasks(w) for w in workers), "a worker got no work")
        for worker in workers:
            stops = [e for e in worker.all("started") if e["task"] == "stop"]
            check(len(stops) == 1, f"{worker.name} got {len(stops)} stop tasks, expected 1")
            check(not any(e["redelivered"] for e in worker.all("started")),
                  f"{worker.name} saw a redelivery; every task should be delivered once")
    finally:
        cleanup(queues=[queue])


run_scenario(main)
