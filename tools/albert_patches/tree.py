"""The built tree: a git repository whose history is the stages, plus what the tool recorded in it.

The record lives inside .git (albert-patches.json), so it never shows as a change in the tree.
"""
import dataclasses
import json
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


UPDATE_ADVICE = "finish it with `update --continue` or undo it with `update --abort`"


def unfinished_update(tree):
  """Names the update in progress in `tree` ("an update to X (stopped at P)"), or None."""
  path = Path(tree) / ".git" / UPDATE_STATE
  if not path.is_file():
    return None
  state = json.loads(path.read_text(encoding="utf-8"))
  stopped = f" (stopped at {state['current'][0]})" if state.get("current") else ""
  return f"an update to {state['to'][:12]}{stopped}"


def require_no_update(tree):
  update = unfinished_update(tree)
  if update:
    raise ToolError(f"{update} is unfinished in {tree}; {UPDATE_ADVICE}")


def work_not_in_patches(tree, record):
  """What `apply` would lose: uncommitted files, commits since the last series commit, and
  every other branch, tag, stash or ref."""
  found = [f"uncommitted {line[3:]}" for line in uncommitted(tree)]
  if not git.succeeds(["merge-base", "--is-ancestor", record.head, "HEAD"], cwd=tree):
    found.append(f"history rewritten after {record.head[:7]} (HEAD is "
                 f"{git.run(['rev-parse', '--short', 'HEAD'], cwd=tree).strip()})")
  else:
    found += [f"commit {line}" for line in commits_after(tree, record.head)]
  return found + other_refs(tree)


SERIES_BRANCH = "refs/heads/patched"


def other_refs(tree):
  """Refs besides the series branch and the branch checked out: work that is in no patch."""
  found = []
  for line in git.run(["for-each-ref", "--format=%(HEAD) %(refname)"], cwd=tree).splitlines():
    current, ref = line[0], line[2:]  # %(HEAD) is "*" for the branch checked out, else " "
    if ref == SERIES_BRANCH or current == "*":
      continue
    if ref == "refs/stash":
      count = len(git.run(["stash", "list"], cwd=tree).splitlines())
      found.append(f"stash ({count} {'entry' if count == 1 else 'entries'}, see `git stash list`)")
    elif ref.startswith("refs/heads/"):
      found.append(f"branch {ref[len('refs/heads/'):]}")
    elif ref.startswith("refs/tags/"):
      found.append(f"tag {ref[len('refs/tags/'):]}")
    else:
      found.append(f"ref {ref}")
  return found
