"""Bad input to tools/apply_patches.py: one `error:` line, a non-zero exit, nothing changed.

Each case spoils one input (the lock, the series, a patch, --out, the command line, the tree)
and runs one command on the tiny upstream's project. `assert_refused` checks the error line, that
there is no traceback, and that the tree (bytes, modes, HEAD, refs, stash), patches/, overlay/
and the lock are exactly as before.
"""
import os
import shutil
import subprocess
from contextlib import contextmanager

import pytest

from .tool_project import (BATCH_PATCH, LR_PATCH, assert_refused, commit_files,
                           edit)

SHA = "0123456789abcdef0123456789abcdef01234567"
TOUCH_SERIES = ("# The patch series", "# The patch series (touched)")


def _lock_line(project, key, value):
  lines = project.lock.read_text().splitlines(keepends=True)
  number = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
  lines[number] = f"{key} = {value}\n"
  project.lock.write_text("".join(lines))


def _write_patch(project, data, name=BATCH_PATCH):
  (project.patches / name).write_bytes(data)


# Each case: setup(project) -> (..., (command line, words the error names[, project.run options])).
CASES = {
    # upstream.lock
    "lock-wrong-shape": lambda p: (
        p.lock.write_text('upstream = "x"\n'),
        (["apply"], ["upstream.lock line 1", "[upstream] must be a table"])),
    "lock-no-converter-table": lambda p: (
        p.lock.write_text(p.lock.read_text().split("[converter]")[0]),
        (["apply"], ["upstream.lock", "[converter]"])),
    "lock-empty": lambda p: (p.lock.write_text(""), (["apply"], ["upstream.lock", "[upstream]"])),
    "lock-commit-not-a-string": lambda p: (
        _lock_line(p, "commit", "1234"), (["apply"], ["commit must be a non-empty string"])),
    "lock-commit-not-hex": lambda p: (
        _lock_line(p, "commit", '"' + "g" * 40 + '"'), (["apply"], ["not a full 40-hex"])),
    "lock-commit-too-short": lambda p: (
        _lock_line(p, "commit", '"' + SHA[:39] + '"'), (["apply"], [SHA[:39], "40-hex"])),
    "lock-table-is-a-string": lambda p: (
        p.lock.write_text(p.lock.read_text().replace("[converter]\n", "converter = 'x'\n"
                                                     "[other]\n")),
        (["apply"], ["[converter] must be a table"])),
    "lock-not-utf8": lambda p: (
        p.lock.write_bytes(p.lock.read_bytes().replace(b"The upstream", b"The \xe9upstream")),
        (["apply"], ["upstream.lock line 1", "0xe9", "not UTF-8"])),
    "lock-is-a-directory": lambda p: (
        p.lock.unlink(), p.lock.mkdir(), (["apply"], ["upstream.lock"])),
    "lock-pins-an-unknown-commit": lambda p: (
        _lock_line(p, "commit", f'"{SHA}"'), (["apply"], [SHA, "is not in", "--upstream"])),
    # patches/series and the patch files
    "series-not-utf8": lambda p: (
        (p.patches / "series").write_bytes(b"# s\xffries\n" + LR_PATCH.encode() + b"\n" +
                                           BATCH_PATCH.encode() + b"\n"),
        (["apply"], ["series line 1", "0xff", "UTF-8"])),
    "series-missing": lambda p: (
        (p.patches / "series").unlink(), (["apply"], ["series is missing"])),
    "series-names-a-missing-file": lambda p: (
        edit(p.patches / "series", BATCH_PATCH, BATCH_PATCH + "\n0003-gone.patch"),
        (["apply"], ["0003-gone.patch", "series line 4"])),
    "series-lists-a-patch-twice": lambda p: (
        edit(p.patches / "series", BATCH_PATCH, BATCH_PATCH + "\n" + LR_PATCH),
        (["apply"], [LR_PATCH, "twice"])),
    "patches-directory-missing": lambda p: (
        shutil.rmtree(p.patches), (["apply"], ["series is missing"])),
    "patch-is-a-directory": lambda p: (
        (p.patches / BATCH_PATCH).unlink(), (p.patches / BATCH_PATCH).mkdir(),
        (["apply"], [BATCH_PATCH, "has no file"])),
    "patch-not-in-series": lambda p: (
        shutil.copy(p.patches / LR_PATCH, p.patches / "0003-stray.patch"),
        (["apply"], ["0003-stray.patch", "not in patches/series"])),
    "patch-empty": lambda p: (_write_patch(p, b""), (["apply"], [BATCH_PATCH, "empty"])),
    "patch-not-a-diff": lambda p: (
        _write_patch(p, b"Subject: Something\nDescription: words\n---\nJust prose.\n"),
        (["apply"], [BATCH_PATCH, "no `diff --git`"])),
    "patch-binary": lambda p: (
        _write_patch(p, bytes(range(256)) * 4), (["apply"], [BATCH_PATCH, "not UTF-8"])),
    "patch-header-not-utf8": lambda p: (
        _write_patch(p, (p.patches / BATCH_PATCH).read_bytes().replace(
            b"HPUs have", b"HPUs \xe0 have")),
        (["apply"], [BATCH_PATCH, "line 2", "0xe0", "not UTF-8"])),
    "patch-all-crlf": lambda p: (
        _write_patch(p, (p.patches / BATCH_PATCH).read_bytes().replace(b"\n", b"\r\n")),
        (["apply"], [BATCH_PATCH, "CRLF line endings"])),
    "patch-without-header": lambda p: (
        _write_patch(p, (p.patches / BATCH_PATCH).read_bytes().split(b"\n---\n", 1)[1]),
        (["apply"], [BATCH_PATCH, "no header"])),
    "patch-does-not-apply": lambda p: (
        edit(p.patches / LR_PATCH, "\n def decay():\n", "\n def decay_rate():\n"),
        (["apply"], [LR_PATCH, "modeling.py", "does not apply"])),
    "check-with-a-patch-not-utf8": lambda p: (
        _write_patch(p, b"Subject: \xff\n---\n"), (["check"], [BATCH_PATCH, "not UTF-8"])),
    "status-with-series-not-utf8": lambda p: (
        (p.patches / "series").write_bytes(b"\xfe\n"), (["status"], ["series", "UTF-8"])),
    "overlay-file-upstream-has": lambda p: (
        (p.root / "overlay" / "run.py").write_text("print('mine')\n"),
        (["apply"], ["overlay/run.py", "upstream"])),
    # --out
    "out-is-a-file": lambda p: (
        (p.root / "notes.txt").write_text("mine\n"),
        (["apply", "--out", str(p.root / "notes.txt")], ["notes.txt", "is a file"])),
    "out-under-a-file": lambda p: (
        (p.root / "notes.txt").write_text("mine\n"),
        (["apply", "--out", str(p.root / "notes.txt" / "albert")], ["notes.txt", "a file"])),
    "out-not-built-by-the-tool": lambda p: (
        (p.root / "mine").mkdir(), (p.root / "mine" / "keep.txt").write_text("keep\n"),
        (["apply", "--out", str(p.root / "mine")], ["not built by this tool"])),
    "cache-under-a-file": lambda p: (
        edit(p.patches / "series", *TOUCH_SERIES), (p.root / "notes.txt").write_text("mine\n"),
        (["apply"], ["cannot lock", "notes.txt"], {"cache": p.root / "notes.txt" / "cache"})),
    # the command line
    "unknown-command": lambda p: (None, (["frobnicate"], ["frobnicate", "--help"])),
    "unknown-option": lambda p: (None, (["apply", "--frobnicate"], ["--frobnicate"])),
    "into-and-new-together": lambda p: (
        None, (["regenerate", "--into", LR_PATCH, "--new", "X"], ["--new", "--into"])),
    # work in the tree that is not in patches/ (the inputs changed, so apply would rebuild)
    "apply-over-a-stash": lambda p: (
        edit(p.patches / "series", *TOUCH_SERIES), edit(p.tree / "run.py", "tiny", "small"),
        p.git("stash", "-q"), (["apply"], ["stash (1 entry", "--force"])),
    "apply-over-a-side-branch": lambda p: (
        edit(p.patches / "series", *TOUCH_SERIES), p.git("branch", "side", "HEAD~1"),
        (["apply"], ["branch side", "--force"])),
    "apply-over-a-tag": lambda p: (
        edit(p.patches / "series", *TOUCH_SERIES), p.git("tag", "mine"),
        (["apply"], ["tag mine", "--force"])),
    "apply-over-another-ref": lambda p: (
        edit(p.patches / "series", *TOUCH_SERIES), p.git("update-ref", "refs/notes/x", "HEAD"),
        (["apply"], ["ref refs/notes/x"])),
    # regenerate
    "regenerate-without-a-tree": lambda p: (
        shutil.rmtree(p.tree), (["regenerate"], ["not built by", "apply"])),
    "regenerate-into-an-unknown-patch": lambda p: (
        edit(p.tree / "run.py", "tiny", "small"),
        (["regenerate", "--into", "0009-nothing.patch"], ["0009-nothing.patch"])),
    "regenerate-a-commit-that-is-not-utf8": lambda p: (
        (p.tree / "README.md").write_bytes(b"Caf\xe9 upstream.\n"),
        p.git("commit", "-q", "-am", "Latin-1 readme"),
        (["regenerate"], ["not UTF-8"])),
    "regenerate-out-is-a-file": lambda p: (
        (p.root / "notes.txt").write_text("mine\n"),
        (["regenerate", "--out", str(p.root / "notes.txt")], ["notes.txt", "not built by"])),
    "regenerate-new-without-changes": lambda p: (
        None, (["regenerate", "--new", "Nothing"], ["uncommitted"])),
    "regenerate-a-tree-not-built-by-the-tool": lambda p: (
        (p.root / "mine").mkdir(),
        (["regenerate", "--out", str(p.root / "mine")], ["not built by"])),
    # update
    "update-continue-with-nothing-in-progress": lambda p: (
        None, (["update", "--continue"], ["no update is in progress"])),
    "update-abort-with-nothing-in-progress": lambda p: (
        None, (["update", "--abort"], ["no update is in progress"])),
    "update-without-to": lambda p: (None, (["update"], ["--to COMMIT"])),
    "update-to-a-branch-name": lambda p: (None, (["update", "--to", "main"], ["main", "hex"])),
    "update-to-an-unknown-commit": lambda p: (None, (["update", "--to", SHA], [SHA])),
    "update-without-a-tree": lambda p: (
        shutil.rmtree(p.tree), (["update", "--to", SHA], ["not built by"])),
    "update-from-a-missing-source": lambda p: (
        None, (["update", "--to", SHA, "--upstream", str(p.root / "gone.bundle")],
               ["gone.bundle", "does not exist"])),
    "update-over-a-stash": lambda p: (
        edit(p.tree / "run.py", "tiny", "small"), p.git("stash", "-q"),
        (["update", "--to", SHA], ["stash (1 entry"])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(project, case):
  *_, (args, expect, *options) = CASES[case](project)
  assert_refused(project, *args, expect=expect, **(options[0] if options else {}))


@contextmanager
def read_only(paths):
  """Makes `paths` read-only even for root (chattr +i), or with chmod for anyone else."""
  root = os.geteuid() == 0
  done = []
  try:
    for path in paths:
      if root:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if made.returncode != 0:
          pytest.skip(f"running as root, and chattr +i does not work here: {made.stderr}")
      else:
        os.chmod(path, path.stat().st_mode & ~0o222)
      done.append(path)
    yield
  finally:
    for path in done:
      if root:
        subprocess.run(["chattr", "-i", str(path)], check=True)
      else:
        os.chmod(path, path.stat().st_mode | 0o200)


def test_regenerate_into_read_only_patches(project):
  commit_files(project.tree, "Add a third change", {"README.md": "Changed.\n"})
  with read_only([project.patches, *project.patches.iterdir()]):
    assert_refused(project, "regenerate", expect=["read-only", "patches"])
  project.ok("regenerate")  # and once writable, the same command works
  assert project.series()[-1] == "0003-add-a-third-change.patch"
