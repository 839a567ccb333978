"""`regenerate`: write the tree's commits back as patches/ and overlay/.

Each commit after the overlay commit becomes one patch; files upstream does not have go to
overlay/. Files whose bytes would not change are not written, so a regenerate with no edits
leaves the project untouched (export.py does the writing).
"""
from pathlib import Path

from .. import export, git
from . import options
from ..errors import ToolError
from ..project import TOPIC, TOPIC_TRAILER
from ..record import require_built
from ..update_state import require_no_update
from ..work import uncommitted

HELP = "write the tree's commits back to patches/ and overlay/"


def add_arguments(parser, root):
  options.add_out(parser, root)
  where = parser.add_mutually_exclusive_group()
  where.add_argument("--into", metavar="PATCH",
                     help="fold the tree's uncommitted changes into this patch "
                          "(file name or subject)")
  where.add_argument("--new", metavar="SUBJECT",
                     help="make the tree's uncommitted changes a new patch with this subject")
  parser.add_argument("--topic", metavar="FOLDER",
                      help="with --new: the folder of patches/ the new patch goes in (its "
                           "concern, e.g. horovod); the commit gets a Patch-Topic: trailer")


def run(project, args, progress):
  if args.topic is not None and not args.new:
    raise ToolError("--topic names the folder of a new patch: give it with --new SUBJECT")
  if args.topic is not None and not TOPIC.match(args.topic):
    raise ToolError(f"--topic {args.topic}: a folder name is one word of lower-case letters, "
                    "digits and `-`, such as horovod")
  tree = Path(args.out).resolve()
  record = require_built(tree)
  require_no_update(tree)
  _require_linear_history(tree, record)
  dirty = uncommitted(tree)
  if dirty:
    if not (args.into or args.new):
      files = ", ".join(line[3:] for line in dirty)
      raise ToolError(f"{tree} has uncommitted changes ({files}); commit them, or say where "
                      "they go: --into PATCH (fold into that patch) or --new NAME (a new patch)")
    _commit_uncommitted(project, tree, record, args)
  elif args.into or args.new:
    raise ToolError("--into and --new take uncommitted changes, and the tree has none")

  plan = export.plan(project, tree, record)
  changed = plan.write(project, progress)
  export.save_record(project, tree, record, plan)
  progress.say(f"done: {len(plan.patches)} patches; {changed} files in patches/ and overlay/ "
               "changed" if changed else "done: patches/ and overlay/ already match the tree")
  return 0


def _require_linear_history(tree, record):
  if not git.succeeds(["merge-base", "--is-ancestor", record.overlay, "HEAD"], cwd=tree):
    raise ToolError(f"{tree}: the overlay commit {record.overlay[:7]} is no longer in the "
                    "history; only commits after it become patches (rebuild with apply --force)")
  merges = git.run(["rev-list", "--min-parents=2", f"{record.overlay}..HEAD"], cwd=tree).split()
  if merges:
    raise ToolError(f"{tree}: merge commit {merges[0][:7]} after the overlay commit; a patch "
                    "series is linear, so rebase the merge away first")


def _commit_uncommitted(project, tree, record, args):
  """Turns uncommitted changes into a commit of their own (--new) or folds them (--into)."""
  if args.new:
    topic = ["-m", f"{TOPIC_TRAILER}: {args.topic}"] if args.topic else []
    git.run(["add", "-A"], cwd=tree)
    git.run(["commit", "-q", "-m", args.new, *topic], cwd=tree)
    return
  subjects = _subjects(tree, record)
  wanted = args.into.removeprefix("patches/")
  target = next((sha for sha, subject, name in subjects
                 if wanted in (subject, name, name and name.rsplit("/", 1)[-1])), None)
  if target is None:
    raise ToolError(f"--into {args.into}: no patch of the tree has that file name or subject")
  git.run(["add", "-A"], cwd=tree)
  git.run(["commit", "-q", f"--fixup={target}"], cwd=tree)
  try:
    git.run(["-c", "sequence.editor=true", "rebase", "-q", "-i", "--autosquash", record.overlay],
            cwd=tree)
  except git.GitError:
    git.succeeds(["rebase", "--abort"], cwd=tree)  # may have nothing to abort
    git.run(["reset", "-q", "--soft", "HEAD~1"], cwd=tree)
    raise ToolError(f"--into {args.into}: the changes conflict with a later patch; commit them "
                    "as their own patch (--new NAME) instead") from None


def _subjects(tree, record):
  """(sha, subject, patch file name or None) of each commit after the overlay commit."""
  names = {sha: name for name, sha in record.patches}
  out = git.run(["log", "--reverse", "--format=%H %s", f"{record.overlay}..HEAD"], cwd=tree)
  return [(sha, subject, names.get(sha)) for sha, subject in
          (line.split(" ", 1) for line in out.splitlines())]
