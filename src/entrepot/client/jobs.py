"""Storage jobs (``/v2/storage/jobs``): read, list, cancel, and wait for the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from entrepot.client._http import Transport
from entrepot.client.errors import JobTimeout, job_error

JobDict = dict[str, Any]
ProgressCallback = Callable[[JobDict], None]

# Keboola job statuses; a cancelled job is "error" with error.code "storage.jobCancelled".
WAITING, PROCESSING, SUCCESS, ERROR = "waiting", "processing", "success", "error"
STATUSES = (WAITING, PROCESSING, SUCCESS, ERROR)


class Jobs:
    """Jobs of the token's project, as Keboola job objects (plus ``progress`` and ``attempt``)."""

    def __init__(self, http: Transport):
        self._http = http

    def get(self, job_id: int | str, *, wait: float | None = None) -> JobDict:
        """The current state of one job; with ``wait`` the server answers when the job finishes or
        after ``wait`` seconds (at most 30), whichever comes first."""
        params = {"wait": f"{wait:.3f}"} if wait else None
        job: JobDict = self._http.json("GET", f"/v2/storage/jobs/{job_id}", params=params)
        return job

    def list(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[JobDict]:
        """The project's jobs, newest first; ``status`` is one of waiting, processing, success, error."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        jobs: list[JobDict] = self._http.json("GET", "/v2/storage/jobs", params=params)
        return jobs

    def cancel(self, job_id: int | str) -> JobDict:
        """Ask for cancellation: a waiting job stops at once, a running one at its next check.

        Raises ``Conflict`` when the job has already finished.
        """
        job: JobDict = self._http.json("POST", f"/v2/storage/jobs/{job_id}/cancel")
        return job

    def wait(
        self,
        job_id: int | str,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        poll_initial: float = 0.05,
        poll_max: float = 2.0,
    ) -> JobDict:
        """Poll until the job finishes and return it on success.

        ``on_progress(job)`` is called whenever the status or progress changes (including the last
        state). Raises ``JobFailed`` or ``JobCancelled`` when the job ends in error, and
        ``JobTimeout`` (the job goes on) when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = max(0.0, poll_initial)
        seen: tuple[Any, Any] | None = None
        # entrepot answers ``?wait=`` when the job ends (long poll); a server that ignores it answers
        # at once, and then the backoff below paces the polls.
        hold = 1.0 if on_progress is not None else 10.0
        first = True
        while True:
            wait = 0.0 if first else hold
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            started = time.monotonic()
            job = self.get(job_id, wait=wait or None)
            held = wait > 0 and time.monotonic() - started >= wait * 0.8
            first = False
            state = (job.get("status"), job.get("progress"))
            if state != seen:
                seen = state
                if on_progress is not None:
                    on_progress(job)
            else:
                delay = min(poll_max, max(delay * 1.5, 0.01))  # nothing moved: poll less often
            status = job.get("status")
            if status == SUCCESS:
                return job
            if status == ERROR:
                raise job_error(job)
            pause = 0.0 if held else delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(job, timeout or 0.0)
                pause = min(pause, remaining)
            time.sleep(pause)
