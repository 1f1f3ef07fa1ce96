"""Job kinds for tests, loaded by worker processes through the ``plugins`` setting.

``test.record`` sleeps ``seconds`` (honouring cancellation) and then appends one line
``<job id> <worker id>`` to the file ``path``: a completed execution leaves exactly one line.
"""

from __future__ import annotations

import os
from typing import Any

from entrepot.core.jobs import JobContext, JobRegistry


def record(ctx: JobContext) -> dict[str, Any]:
    seconds = float(ctx.params.get("seconds", 0))
    if seconds:
        ctx.cancelled.wait(seconds)
        ctx.check_cancelled()
    line = f"{ctx.job.id} {ctx.worker_id}\n".encode()
    fd = os.open(ctx.params["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return {"worker": ctx.worker_id}


def register_jobs(registry: JobRegistry) -> None:
    registry.register("test.record", record)
