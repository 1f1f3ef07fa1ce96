"""The docs are tests: every guide runs top to bottom, alone, against a fresh server.

One test per guide (``README.md``, ``docs/*.md``). The blocks run in the order written; the
conventions (which blocks run, the ``<!-- not run: reason -->`` marker, what the harness
provides) are in docs/dev/docs-tests.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.guides import REPO, BlockFailed, GuideError, GuideRun, guides, parse_guide


@pytest.mark.parametrize("guide", guides(), ids=lambda p: str(p.relative_to(REPO)))
def test_guide_runs_top_to_bottom_on_a_fresh_server(guide: Path, tmp_path: Path) -> None:
    try:
        blocks = parse_guide(guide)
    except GuideError as exc:
        pytest.fail(str(exc), pytrace=False)
    runnable = [block for block in blocks if block.kind is not None]
    if not runnable:
        return
    with GuideRun(guide, tmp_path) as run:
        for block in runnable:
            run.run(block)


def test_a_block_without_a_language_must_say_what_it_is(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text("# Guide\n\n```\nentrepot serve\n```\n")
    with pytest.raises(GuideError, match=r"guide.md:3: a code block without a language"):
        parse_guide(guide)


def test_blocks_are_run_or_skipped_by_language_and_marker(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(
        "```bash\necho a\n```\n\n<!-- not run: starts a server -->\n\n```bash\nentrepot serve\n```\n\n"
        "```text\noutput\n```\n\n- item:\n\n  ```python\n  print(1)\n  ```\n\n"
        "```console\n$ echo b \\\n  c\nb c\n```\n"
    )
    blocks = parse_guide(guide)
    assert [(b.line, b.kind, b.skip_reason) for b in blocks] == [
        (1, "bash", None),
        (7, None, "starts a server"),
        (11, None, None),
        (17, "python", None),
        (21, "bash", None),
    ]
    assert blocks[3].code == "print(1)\n"
    assert blocks[4].code == "echo b \\\n  c\n"


def test_the_harness_runs_blocks_like_one_reader_in_one_shell_and_fails_on_errors(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(
        "```python\nimport requests\n```\n\n"
        "```bash\nanswer=42\nexport SHARED=yes\necho hi > file.txt\n```\n\n"
        '```bash\ntest "$answer/$SHARED/$(cat file.txt)" = 42/yes/hi\n```\n\n'
        "```bash\npip install 'entrepot[clients]'\n```\n\n"
        "```python\nimport os, requests\n\nverify = os.environ['ENTREPOT_URL'] + '/v2/storage/tokens/verify'\n```\n\n"
        "```python\nassert os.environ['SHARED'] == 'yes'\nrequests.get(verify)\n```\n\n"
        '```bash\ncurl -s "$ENTREPOT_URL/v2/storage/tokens/verify"\n```\n'
    )
    blocks = [block for block in parse_guide(guide) if block.kind]
    with GuideRun(guide, tmp_path / "run") as run:
        with pytest.raises(
            BlockFailed, match=r"guide.md:1: the python block failed[\s\S]*No module named 'requests'"
        ):
            run.run(blocks[0])
        for block in blocks[1:5]:
            run.run(block)
        with pytest.raises(BlockFailed, match=r"401 for GET"):  # requests in a guide raises on a 4xx
            run.run(blocks[5])
        with pytest.raises(BlockFailed, match=r"guide.md:31: `curl[^\n]*` failed \(exit 22\)"):
            run.run(blocks[6])
