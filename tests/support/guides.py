"""Run a documentation guide's code blocks, in order, against a fresh server (docs/dev/docs-tests.md).

A guide is ``README.md`` or ``docs/*.md``. Its fenced blocks whose language is ``bash``, ``sh``,
``shell``, ``console``, ``python`` or ``py`` run; every other block must say what it is with its
language (``text``, ``json``, ``toml``, ...). A block that would run but must not (``entrepot
serve`` itself, a recipe for other machines) is preceded by ``<!-- not run: <reason> -->``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from support.server import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(__file__).resolve().with_name("guide_tools.py")

BASH_LANGS = {"bash", "sh", "shell", "console"}
PYTHON_LANGS = {"python", "py"}
DOCS_URL = "127.0.0.1:8000"  # what the guides write; the harness's server listens elsewhere
BLOCK_TIMEOUT = 180.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")


class GuideError(Exception):
    """The guide itself is malformed (an unmarked bare fence, an unterminated block, ...)."""


@dataclass(frozen=True)
class Block:
    guide: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip_reason: str | None = None  # from a <!-- not run: ... --> marker

    @property
    def kind(self) -> str | None:
        """'bash' or 'python' when the block runs, else None."""
        if self.skip_reason is not None:
            return None
        if self.lang in BASH_LANGS:
            return "bash"
        if self.lang in PYTHON_LANGS:
            return "python"
        return None

    @property
    def where(self) -> str:
        return f"{_display(self.guide)}:{self.line}"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def parse_guide(path: Path) -> list[Block]:
    """Every fenced block of a guide, with its language and its not-run marker if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if (
                close
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            body.append(lines[i])
            i += 1
        else:
            raise GuideError(f"{_display(path)}:{start + 1}: the code block is never closed")
        i += 1
        lang = info.split()[0].lower() if info else ""
        reason = _marker_before(lines, start)
        if not lang and reason is None:
            raise GuideError(
                f"{_display(path)}:{start + 1}: a code block without a language; write ```bash or "
                "```python for a block that runs, ```text (or json, toml, ...) for one that does not"
            )
        code = textwrap.dedent("\n".join(_strip_indent(line, indent) for line in body))
        if lang == "console":
            code = _console_commands(code)
        blocks.append(Block(path, start + 1, lang or "text", code + "\n", reason))
    return blocks


def _strip_indent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _marker_before(lines: list[str], fence: int) -> str | None:
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j >= 0 and (m := _NOT_RUN.match(lines[j])):
        return m["reason"]
    return None


def _console_commands(code: str) -> str:
    """A console block: the lines after a ``$ `` prompt (and their continuations); the rest is output."""
    lines = code.splitlines()
    if not any(line.startswith("$ ") for line in lines):
        return code
    commands: list[str] = []
    continued = False
    for line in lines:
        if line.startswith("$ ") or continued:
            commands.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.endswith("\\")
    return "\n".join(commands)


class BlockFailed(AssertionError):
    pass


class GuideRun:
    """A fresh ``entrepot serve`` in a fresh working directory, and the shells a reader would have.

    The server runs as a reader starts it (``entrepot serve`` in the working directory, data in
    ``./entrepot-data``, on a free port), and the blocks see what the quick start leaves: the
    venv on ``PATH``, ``ENTREPOT_URL`` and ``ENTREPOT_TOKEN`` (the master token ``serve``
    printed). Bash blocks share shell variables, exports and the working directory as if typed
    into one shell; python blocks share one interpreter.
    """

    def __init__(self, guide: Path, root: Path):
        self.guide = guide
        self.root = root
        self.cwd = root / "work"
        self.tools = root / "harness"
        self.cwd.mkdir(parents=True)
        self.tools.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env: dict[str, str] = {}
        self._server: subprocess.Popen | None = None
        self._server_log = self.tools / "serve.log"
        self._python: subprocess.Popen | None = None
        self._python_results = None
        self._python_log = self.tools / "python.log"
        self._groups: list[int] = []  # process groups of bash blocks (anything left running is stopped)

    # --- setup -------------------------------------------------------------------------
    def start(self) -> None:
        bin_dir = self.tools / "bin"
        bin_dir.mkdir()
        marker = self.tools / "installed.json"
        for name in ("pip", "pip3"):  # `pip install 'entrepot[clients]'` checks, installs nothing
            shim = bin_dir / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOLS}" pip "{marker}" "$@"\n')
            shim.chmod(0o755)
        # a reader sees an HTTP error in curl's output; a test needs curl to fail on it
        (self.tools / ".curlrc").write_text("fail-with-body\nshow-error\n")
        venv_bin = str(Path(sys.executable).parent)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ENTREPOT_", "PYTEST", "PYTHON"))}
        base["PATH"] = os.pathsep.join([str(bin_dir), venv_bin, base.get("PATH", "")])
        base["HOME"] = str(self.root / "home")
        base["CURL_HOME"] = str(self.tools)
        base["PYTHONUNBUFFERED"] = "1"
        (self.root / "home").mkdir()
        self.marker = marker
        self.env = dict(base)
        token = self._start_server(base)
        self.env["ENTREPOT_URL"] = self.url
        self.env["ENTREPOT_TOKEN"] = token

    def _start_server(self, env: dict[str, str]) -> str:
        log = open(self._server_log, "wb")  # noqa: SIM115 - the server's log for its whole life
        self._server = subprocess.Popen(
            [sys.executable, "-m", "entrepot", "serve", "--port", str(self.port), "--log-level", "warning"],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_healthy(self._server, self.url, self._server_log.read_text, timeout=60)
        m = re.search(r"^\s+(\d+-\d+-[0-9a-f]{64})\s*$", self._server_log.read_text(), re.M)
        assert m, f"entrepot serve printed no master token:\n{self._server_log.read_text()}"
        return m[1]

    def close(self) -> None:
        for group in self._groups:
            _killpg(group)
        if self._python is not None:
            self._stop(self._python)
        if self._server is not None:
            self._stop(self._server)

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                _killpg(proc.pid)
                proc.wait(5)

    def __enter__(self) -> GuideRun:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- running blocks ----------------------------------------------------------------
    def run(self, block: Block) -> str:
        """Run one block; its output, or BlockFailed with the guide's line, the block and the output."""
        code = block.code.replace(DOCS_URL, f"127.0.0.1:{self.port}")
        if block.kind == "bash":
            ok, output = self._run_bash(block, code)
        elif block.kind == "python":
            ok, output = self._run_python(block, code)
        else:
            return ""
        if not ok:
            raise BlockFailed(
                f"{block.where}: the {block.lang} block failed\n"
                f"----- block ({block.where}) -----\n{block.code.rstrip()}\n"
                f"----- output -----\n{_tail(output)}\n"
                f"----- server log (tail) -----\n{_tail(self._server_log.read_text(errors='replace'), 3000)}"
            )
        return output

    def _run_bash(self, block: Block, code: str) -> tuple[bool, str]:
        n = block.line
        script = self.tools / f"block-{n}.sh"
        # padded so that $LINENO (and bash's own messages) give the guide's line numbers
        script.write_text("\n" * n + code)
        state, env_dump = self.tools / "shell-vars.sh", self.tools / "shell-env"
        wrapper = self.tools / f"run-{n}.sh"
        wrapper.write_text(
            textwrap.dedent(
                f"""\
                __docs_script={shlex.quote(str(script))}
                __docs_guide={shlex.quote(_display(block.guide))}
                if [ -f {shlex.quote(str(state))} ]; then source {shlex.quote(str(state))}; fi
                trap '__docs_rc=$? __docs_line=$LINENO; [ "${{BASH_SOURCE[0]}}" != "$__docs_script" ] ||
                      echo "$__docs_guide:$__docs_line: \\`$BASH_COMMAND\\` failed (exit $__docs_rc)" >&2' ERR
                source "$__docs_script"
                trap - ERR
                for __docs_v in $(compgen -v); do
                    case "$__docs_v" in
                        __docs_*|BASH*|FUNCNAME|PIPESTATUS|LINENO|RANDOM|SRANDOM|SECONDS|EPOCH*|HISTCMD) continue;;
                        DIRSTACK|GROUPS|OPTIND|OPTERR|PWD|OLDPWD|SHLVL|IFS|PS[1-4]|COMP_WORDBREAKS|_) continue;;
                    esac
                    if [[ "${{!__docs_v@a}}" != *r* ]]; then declare -p "$__docs_v"; fi
                done > {shlex.quote(str(state))}.new
                mv {shlex.quote(str(state))}.new {shlex.quote(str(state))}
                env -0 > {shlex.quote(str(env_dump))}
                """
            )
        )
        proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-euo", "pipefail", str(wrapper)],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._groups.append(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid)
            stdout, stderr = proc.communicate()
            out = (stdout + stderr).decode(errors="replace")
            return False, out + f"\n(timed out after {BLOCK_TIMEOUT:.0f} s)"
        output = stdout.decode(errors="replace") + stderr.decode(errors="replace")
        if proc.returncode != 0:
            return False, output + f"\n(exit status {proc.returncode})"
        self.env = _read_env(env_dump)
        return True, output

    def _run_python(self, block: Block, code: str) -> tuple[bool, str]:
        if self._python is None:
            read_fd, write_fd = os.pipe()
            log = open(self._python_log, "wb")  # noqa: SIM115 - the interpreter's output
            self._python = subprocess.Popen(
                [sys.executable, str(TOOLS), "python", str(write_fd), str(self.marker)],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
            log.close()
            os.close(write_fd)
            self._python_results = os.fdopen(read_fd, "r")
        assert self._python.stdin is not None and self._python_results is not None
        start = self._python_log.stat().st_size
        request = {"filename": str(block.guide), "line": block.line, "code": code, "env": self.env}
        self._python.stdin.write((json.dumps(request) + "\n").encode())
        self._python.stdin.flush()
        answer = _readline(self._python_results, BLOCK_TIMEOUT)
        with open(self._python_log, "rb") as f:
            f.seek(start)
            output = f.read().decode(errors="replace")
        if answer is None:
            if self._python.poll() is None:
                return False, output + f"\n(timed out after {BLOCK_TIMEOUT:.0f} s)"
            return False, output + f"\n(the interpreter exited with status {self._python.returncode})"
        return bool(json.loads(answer)["ok"]), output


def _readline(stream, timeout: float) -> str | None:  # type: ignore[no-untyped-def]
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return None
    return stream.readline() or None


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in path.read_bytes().split(b"\0"):
        if b"=" in item:
            key, _, value = item.decode(errors="surrogateescape").partition("=")
            env[key] = value
    for key in ("SHLVL", "_", "OLDPWD", "PWD"):
        env.pop(key, None)
    return env


def _tail(text: str, limit: int = 6000) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _killpg(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def guides() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
