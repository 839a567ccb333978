"""The built tree: a git repository whose history is the stages, plus what the tool recorded in it.

The record lives inside .git (albert-patches.json), so it never shows as a change in the tree.
"""
import dataclasses
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import git
from .errors import ToolError

RECORD = "albert-patches.json"


@dataclasses.dataclass
class Record:
  inputs: str  # Project.inputs_digest when the tree was built or last regenerated
  upstream: str  # the pinned upstream commit
  converted: str  # the tf_upgrade_v2 commit
  overlay: str  # the overlay commit
  head: str  # the last series commit
  patches: list  # [[patch file name, commit]] in series order
  date: str  # the date the tool's commits carry

  @classmethod
  def load(cls, tree):
    path = Path(tree) / ".git" / RECORD
    if not path.is_file():
      return None
    return cls(**json.loads(path.read_text(encoding="utf-8")))

  def save(self, tree):
    path = Path(tree) / ".git" / RECORD
    path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n", encoding="utf-8")


def require_built(tree):
  record = Record.load(tree)
  if record is None:
    raise ToolError(f"{tree} was not built by tools/apply_patches.py (no .git/{RECORD}); "
                    "build one with `tools/apply_patches.py apply --out DIR`")
  return record


def uncommitted(tree):
  """`git status` lines of changed, staged and untracked files (ignored ones excluded)."""
  out = git.run(["status", "--porcelain", "--untracked-files=all"], cwd=tree)
  return [line for line in out.splitlines() if line]


def commits_after(tree, base):
  """One-line descriptions of the commits on HEAD after `base`, oldest first."""
  out = git.run(["log", "--reverse", "--format=%h %s", f"{base}..HEAD"], cwd=tree)
  return [line for line in out.splitlines() if line]


UPDATE_STATE = "albert-patches-update.json"


def require_no_update(tree):
  state = Path(tree) / ".git" / UPDATE_STATE
  if state.is_file():
    target = json.loads(state.read_text(encoding="utf-8"))["to"]
    raise ToolError(f"an update to {target[:12]} is unfinished in {tree}; finish it with "
                    "`update --continue` or undo it with `update --abort`")


def work_not_in_patches(tree, record):
  """What `apply` would lose: uncommitted files, and commits since the last series commit."""
  found = [f"uncommitted {line[3:]}" for line in uncommitted(tree)]
  on_top = git.run(["merge-base", "--is-ancestor", record.head, "HEAD"], cwd=tree, check=False)
  if on_top.returncode != 0:
    found.append(f"history rewritten after {record.head[:7]} (HEAD is "
                 f"{git.run(['rev-parse', '--short', 'HEAD'], cwd=tree).strip()})")
  else:
    found += [f"commit {line}" for line in commits_after(tree, record.head)]
  return found


@contextmanager
def staging_dir(out):
  """A fresh directory beside `out` for building; removed unless the build was moved into place."""
  out = Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  path = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
  try:
    yield path / "albert"
  finally:
    shutil.rmtree(path, ignore_errors=True)


def replace(out, built):
  """Moves a finished tree to `out`, replacing the previous one only once the new one is there."""
  out = Path(out)
  if not out.exists():
    os.rename(built, out)
    return
  old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
  os.rename(out, old / "albert")
  try:
    os.rename(built, out)
  except OSError:
    os.rename(old / "albert", out)
    raise
  shutil.rmtree(old, ignore_errors=True)
