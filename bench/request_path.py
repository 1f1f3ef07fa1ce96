"""Which of entrepot's modules one request passes through, and how often it re-enters one it left.

Usage: ``python bench/request_path.py`` (prints the table-import request's path). It starts a
real server in-process on a free port with a temporary data directory, creates a bucket and a
table, then records — with a profile hook on every thread except the job workers — the module
of each entrepot function called while one ``POST /v2/storage/tables/<id>/import-async``
(inline CSV) is served. The path is that sequence with consecutive repeats folded; a
*re-entry* is a call into a module the path had already left; the face's calls into the core
are listed by name (constructing a core input type is not a call). Measured by issue 14 before and
after moving the commands into the core.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from entrepot.config import Settings
from entrepot.server import ThreadedServer, prepare

IGNORED = ("entrepot.logs", "entrepot.metrics")  # every request's plumbing, not its route


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), job_response_wait=0)
        prepared = prepare(settings)
        assert prepared.bootstrap is not None
        token = prepared.bootstrap.master.token
        recorder = Recorder()
        threading.setprofile(recorder.hook)  # before the server starts, so its threads have it
        server = ThreadedServer(settings, prepared.services, workers=1).start()
        headers = {"X-StorageApi-Token": token}
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                http.post("/v2/storage/buckets", data={"name": "trace", "stage": "in"}).raise_for_status()
                job = http.post(
                    "/v2/storage/buckets/in.c-trace/tables-async",
                    data={"name": "t", "dataString": "id,v\n1,a\n"},
                ).json()
                while job["status"] not in ("success", "error"):
                    job = http.get(f"/v2/storage/jobs/{job['id']}", params={"wait": 5}).json()
                assert job["status"] == "success", job
                recorder.recording = True
                http.post(
                    "/v2/storage/tables/in.c-trace.t/import-async",
                    data={"dataString": "id,v\n2,b\n", "incremental": "1"},
                ).raise_for_status()
                recorder.recording = False
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
            server.stop()
            prepared.services.close()
    report(recorder.calls)


class Recorder:
    """A profile hook: while ``recording``, the module of every entrepot function called."""

    def __init__(self) -> None:
        self.recording = False
        self.calls: list[tuple[str, str, str]] = []  # (module, function, the caller's module)
        self._lock = threading.Lock()

    def hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.recording or event != "call" or threading.current_thread().name.startswith("entrepot-"):
            return
        module = frame.f_globals.get("__name__", "")
        if module.startswith("entrepot.") and not module.startswith(IGNORED):
            with self._lock:
                caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
                self.calls.append((module, frame.f_code.co_name, caller))


def report(calls: list[tuple[str, str, str]]) -> None:
    path = [m for i, (m, _, _) in enumerate(calls) if i == 0 or calls[i - 1][0] != m]
    seen: set[str] = set()
    reentries = 0
    for i, module in enumerate(path):
        if module in seen and path[i - 1] != module:
            reentries += 1
        seen.add(module)
    # a face's calls into the core, but not the constructions of the core's input types
    commands = [
        f"{m.removeprefix('entrepot.')}.{f}"
        for m, f, caller in calls
        if caller.startswith("entrepot.faces.") and m.startswith("entrepot.core.") and f != "__init__"
    ]
    faces = sum(m.startswith("entrepot.faces.") for m in seen)
    print(f"modules passed through: {len(seen)} ({faces} of them faces)")
    print(f"re-entries into a module already left: {reentries}")
    print(f"the face's calls into the core ({len(commands)}): {', '.join(commands)}")
    print("path:", " → ".join(m.removeprefix("entrepot.") for m in path))


if __name__ == "__main__":
    main()
