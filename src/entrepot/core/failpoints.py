"""Failpoints: named places where an operator or a test makes entrepot pause on purpose.

``ENTREPOT_FAILPOINTS="tables.import.before_commit=pause(30)"`` makes every process started
with that setting stop for 30 seconds when it reaches that place, after logging
``failpoint tables.import.before_commit reached``. Reliability tests use it to kill a worker
at an exact moment (mid-transaction) instead of racing a timer; operators can use it to
rehearse crash recovery. Unset (the default), a failpoint costs one dictionary lookup.

Places: ``tables.import.before_commit`` (an import has written its rows, not yet committed);
``exports.run.before_write`` (an export job is processing and has not started writing; a cancel
ends the pause).
"""

from __future__ import annotations

import logging
import threading
import time

from entrepot.config import Settings
from entrepot.syntax import parse_failpoints as parse

__all__ = ["parse", "reach"]

log = logging.getLogger("entrepot.failpoints")


def reach(settings: Settings, name: str, *, cancel: threading.Event | None = None) -> None:
    """Run the action configured for failpoint ``name``, if any (a set ``cancel`` ends a pause)."""
    seconds = parse(settings.failpoints).get(name) if settings.failpoints else None
    if seconds is None:
        return
    log.warning("failpoint %s reached: pausing %.1f s", name, seconds)
    if cancel is not None:
        cancel.wait(seconds)
    else:
        time.sleep(seconds)
