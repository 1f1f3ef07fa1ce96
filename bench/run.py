"""Run every benchmark in bench/ (or the ones named) and print their tables.

python bench/run.py               # all
python bench/run.py jobs_latency  # one, with its defaults
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> None:
    scripts = [HERE / f"{n}.py" for n in names] or sorted(
        p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_")
    )
    for script in scripts:
        print(f"\n## {script.stem}\n", flush=True)
        started = time.perf_counter()
        saved = sys.argv
        sys.argv = [str(script)]
        try:
            runpy.run_path(str(script), run_name="__main__")
        finally:
            sys.argv = saved
        print(f"\n({script.stem} took {time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
