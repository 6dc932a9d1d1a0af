"""The Celery app for python/celery_worker: tasks run by a real worker process,
with kombu (py-amqp) as the broker transport and results sent back through
the rpc:// result backend (replies to the caller's reply queue, matched by
correlation_id: AMQP RPC under the hood).

The broker is $AMQP_URL; the task queue name is $INTEROP_CELERY_QUEUE so
that runs against a shared broker don't meet."""

import os

from celery import Celery

app = Celery("interop_tasks", broker=os.environ["AMQP_URL"], backend="rpc://")
app.conf.update(
    task_default_queue=os.environ.get("INTEROP_CELERY_QUEUE", "celery"),
    broker_connection_retry_on_startup=False,
    broker_connection_max_retries=0,
    worker_hijack_root_logger=False,
    task_acks_late=True,
    result_serializer="json",
    task_serializer="json",
    accept_content=["json"],
)


@app.task
def add(x, y):
    return x + y


@app.task
def echo_bytes(n):
    """Return a string of n characters (a result spanning several frames)."""
    return "x" * n


class ExpectedFailure(Exception):
    pass


@app.task
def fail(message):
    raise ExpectedFailure(message)
