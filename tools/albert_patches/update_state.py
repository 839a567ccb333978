"""The state of an unfinished `update`, kept in the tree's .git between `--continue`s.

One class reads and writes it; other commands ask it only whether an update is unfinished.
"""
import dataclasses
import json
from pathlib import Path

from .errors import ToolError

FILE = "albert-patches-update.json"
ADVICE = "finish it with `update --continue` or undo it with `update --abort`"


@dataclasses.dataclass
class UpdateState:
  to: str  # the upstream commit being moved to
  from_head: str  # the tree's HEAD before the update, for --abort
  record: dict  # the tree's record before the update (Record.to_dict)
  date: str  # the new upstream commit's date, which the replayed commits carry
  converted: str  # the new conversion commit
  overlay: str  # the new overlay commit
  tensorflow: str  # the TensorFlow release whose tf_upgrade_v2 converted it
  pending: list  # [[patch name, old commit]] still to replay, in order
  done: list  # [[patch name, old commit]] replayed
  current: list = None  # [patch name, old commit] stopped at a conflict, if any

  @staticmethod
  def path(tree):
    return Path(tree) / ".git" / FILE

  @classmethod
  def load(cls, tree):
    """The unfinished update in `tree`, or None."""
    path = cls.path(tree)
    if not path.is_file():
      return None
    try:
      return cls(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
      raise ToolError(f"{path} is not an update state this tool can read; undo the update by "
                      "hand (`git cherry-pick --abort`) and rebuild with `apply --force`") from None

  def save(self, tree):
    self.path(tree).write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n",
                               encoding="utf-8")

  def remove(self, tree):
    self.path(tree).unlink()

  def describe(self):
    """"an update to X (stopped at P)", for messages."""
    stopped = f" (stopped at {self.current[0]})" if self.current else ""
    return f"an update to {self.to[:12]}{stopped}"


def unfinished_update(tree):
  """Names the update in progress in `tree` ("an update to X (stopped at P)"), or None."""
  state = UpdateState.load(tree)
  return state.describe() if state else None


def require_no_update(tree):
  update = unfinished_update(tree)
  if update:
    raise ToolError(f"{update} is unfinished in {tree}; {ADVICE}")
