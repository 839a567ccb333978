"""Stage 3, overlay: files upstream does not have, copied from overlay/ into the tree as one
commit."""
import shutil
from pathlib import Path

from . import git
from .errors import ToolError

MESSAGE = "Add overlay files"


def add_overlay(project, tree, date):
  """Copies overlay/ into the tree and commits it; returns (sha, number of files)."""
  files = project.overlay_files()
  for rel in files:
    target = Path(tree) / rel
    if any(p.is_symlink() for p in target.parents if Path(tree) in p.parents):
      raise ToolError(f"overlay/{rel} would be written through a symlink of upstream's tree; "
                      "move it to another folder of overlay/")
    if target.exists():
      raise ToolError(f"overlay/{rel} is also a file of upstream: change upstream files with a "
                      "patch, not the overlay")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(project.overlay_dir / rel, target)
  return git.commit_all(tree, MESSAGE, date), len(files)
