"""Building beside the tree and moving it into place, so that a failed or killed run loses nothing.

A build happens in `.NAME.building-*` beside the tree. Replacing a tree is two renames: the old
tree into `.NAME.old-*/albert`, then the new one into place; the old one is then renamed to
`replaced` inside that directory and removed. A kill can stop this at any point, so each apply
first recovers (the run holds the tree lock, so no other run is using these directories): an old
tree still called `albert` while the tree is missing is moved back, and every leftover directory
is removed. Each of these steps is said on the progress output.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import ToolError

INNER = "albert"


def require_buildable(out):
  """Refuses an --out that names a file, lies under a file, or is in a directory we cannot write."""
  if out.exists() and not out.is_dir():
    raise ToolError(f"--out {out} is a file, not a directory; move it away or choose another "
                    "--out")
  parent = next(p for p in out.parents if p.exists())
  if not parent.is_dir():
    raise ToolError(f"--out {out} is under {parent}, which is a file; choose another --out")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ToolError(f"--out {out}: cannot write in {parent}; choose another --out")


def _leftovers(out, kind):
  return sorted(out.parent.glob(f".{out.name}.{kind}-*"), key=lambda p: p.stat().st_mtime)


def recover(out, say):
  """Puts back a tree an interrupted replace left hidden, and removes what killed runs left."""
  if not out.parent.is_dir():
    return
  olds = _leftovers(out, "old")
  hidden = [old / INNER for old in olds if (old / INNER).is_dir()]
  if hidden and not os.path.lexists(out):
    os.rename(hidden[-1], out)
    say(f"recovered {out}: an interrupted apply had moved it to {hidden[-1].parent.name}")
  leftovers = _leftovers(out, "building") + olds
  for path in leftovers:
    shutil.rmtree(path, ignore_errors=True)
  if leftovers:
    say(f"removed what an interrupted apply left beside {out}: "
        f"{', '.join(p.name for p in leftovers)}")


@contextmanager
def staging_dir(out):
  """A fresh directory beside `out` for building; removed unless the build was moved into place."""
  path = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
  try:
    yield path / INNER
  finally:
    shutil.rmtree(path, ignore_errors=True)


def replace(out, built):
  """Moves a finished tree to `out`, replacing the previous one only once the new one is there."""
  if not out.exists():
    os.rename(built, out)
    return
  old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
  os.rename(out, old / INNER)
  try:
    os.rename(built, out)
  except OSError:
    os.rename(old / INNER, out)
    raise
  os.rename(old / INNER, old / "replaced")  # from here on, recover() will not bring it back
  shutil.rmtree(old, ignore_errors=True)
