"""Every Python example of the Duckietown DCSS guide (seed 002) runs against entrepot.

The examples are written for ``dt_data_api``; entrepot's ``DataClient`` plays its part, so
the only changes are ``dt_data_api`` → ``entrepot`` and a real token for
``"YOUR-TOKEN-HERE"``. The server comes from ``ENTREPOT_URL``, as a reader would set it.
Each example runs as its own script in a fresh interpreter, the way a reader would paste
it: the upload examples end right after ``storage.upload(...)`` without waiting, so the
script's exit must still let the transfer finish.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from entrepot import DataClient

SEEDS = Path(__file__).resolve().parent / "seeds"
SEED_002 = "002_b8bb1a9fca07f424.txt"
CONTENT = os.urandom(3 * 1024 * 1024 + 77)  # large enough for a callback line per few percent


def rst_python_blocks(name: str) -> list[str]:
    """The ``.. code-block:: python`` blocks of an reStructuredText seed, dedented, in order."""
    lines = (SEEDS / name).read_text().splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: python":
            i += 1
            continue
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            body.append(lines[i])
            i += 1
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


def adapt(block: str, token: str) -> str:
    assert "dt_data_api" in block or "storage." in block
    return block.replace("dt_data_api", "entrepot").replace("YOUR-TOKEN-HERE", token)


@pytest.fixture
def reader(server, tmp_path):  # type: ignore[no-untyped-def]
    """Run a script in the reader's folder with ENTREPOT_URL set; return the finished process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env["ENTREPOT_URL"] = server.url
    workdir = tmp_path / "reader"
    workdir.mkdir()

    def run(script: str) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, timeout=120
        )
        assert proc.returncode == 0, f"{script}\n---\n{proc.stderr.decode(errors='replace')}"
        assert b"Traceback" not in proc.stderr and b"ERROR" not in proc.stderr, proc.stderr
        return proc

    run.workdir = workdir  # type: ignore[attr-defined]
    return run


def test_seed_002_examples_run(server, reader):
    blocks = rst_python_blocks(SEED_002)
    assert len(blocks) == 8
    token = server.token
    workdir: Path = reader.workdir
    with DataClient(token, url=server.url) as admin:  # the object the examples download
        admin.storage("public").upload(CONTENT, "my_dir/my_file.txt").join()
    private = DataClient(token, url=server.url).storage("private")

    # Data Client: an anonymous client, then a Storage object for the public space
    reader(adapt(blocks[0], token))
    reader(adapt(blocks[1], token) + "assert storage.name == 'public' and client.token is None\n")
    # Authentication: a client with a token
    reader(adapt(blocks[2], token) + "assert client.token is not None\n")

    # Download an object to file (the script ends without waiting: the download still completes)
    assert "storage.download('my_dir/my_file.txt', './my_file.txt')" in blocks[3]
    reader(adapt(blocks[3], token))
    assert (workdir / "my_file.txt").read_bytes() == CONTENT
    assert [p.name for p in workdir.iterdir()] == ["my_file.txt"]  # no temporary file left

    # Download an object as bytes
    assert "data: bytes = download.data" in blocks[4]
    got = reader(adapt(blocks[4], token) + "import sys; sys.stdout.buffer.write(data)\n")
    assert got.stdout == CONTENT

    # Upload a file (to the private space, with the token), without waiting
    assert "storage.upload('./my_file.txt', 'my_dir/my_file.txt')" in blocks[5]
    reader(adapt(blocks[5], token))
    assert private.download("my_dir/my_file.txt").join().data == CONTENT

    # Upload from byte buffer
    reader(adapt(blocks[6], token))
    assert private.download("my_dir/my_file.txt").join().data == b"my_binary_content"

    # Monitor the transfer: `storage` is the private space of the examples before it
    setup = "\n".join(line for line in blocks[5].splitlines() if not line.startswith("storage.upload"))
    assert 'storage = client.storage("private")' in setup
    monitored = reader(adapt(setup, token) + "\n" + blocks[7])
    printed = monitored.stdout.decode().split()
    assert printed and all(p.endswith("%") for p in printed), printed
    percentages = [int(p[:-1]) for p in printed]
    assert len(percentages) >= 2 and percentages == sorted(percentages) and percentages[-1] == 100
    assert private.download("my_dir/my_file.txt").join().data == CONTENT
