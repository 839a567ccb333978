"""`status`: the series as a table, and whether the tree matches it."""
from pathlib import Path

from .. import build
from .. import diff as diffs
from . import options
from ..record import Record
from ..update_state import ADVICE, unfinished_update
from ..work import work_not_in_patches

HELP = "show the series and whether the tree matches it"


def add_arguments(parser, root):
  options.add_out(parser, root)


def run(project, args, progress):
  names = project.series()
  rows = [("patch", "files", "+", "-")]
  for name in names:
    diff = project.patch(name).diff
    added, removed = diffs.changed_lines(diff)
    rows.append((name, str(len(diffs.parse(diff))), str(added), str(removed)))
  width = max(len(row[0]) for row in rows)
  for row in rows:
    progress.say(f"{row[0]:<{width}}  {row[1]:>5}  {row[2]:>5}  {row[3]:>5}")
  progress.say(f"overlay/: {len(project.overlay_files())} files")

  tree = Path(args.out).resolve()
  record = Record.load(tree) if tree.exists() else None
  if record is None:
    progress.say(f"tree {tree}: not built (run apply)")
    return 0
  update = unfinished_update(tree)
  if update:
    progress.say(f"tree {tree}: updating ({update} is unfinished; {ADVICE})")
    return 0
  work = work_not_in_patches(tree, record)
  uncommitted = [w.split(" ", 1)[1] for w in work if w.startswith("uncommitted ")]
  others = [w for w in work if not w.startswith("uncommitted ")]
  if uncommitted:
    state = f"dirty ({', '.join(uncommitted)})"
    if others:
      state += f"; also {'; '.join(others)}"
  elif others:
    state = f"ahead ({'; '.join(others)}; commit it on top of the series and run regenerate)"
  elif record.inputs != build.inputs_digest(project):
    state = ("behind (the lock, patches/, overlay/, the converter or the tool changed since "
             "it was built; run apply)")
  else:
    state = "clean"
  progress.say(f"tree {tree}: {state}")
  return 0
