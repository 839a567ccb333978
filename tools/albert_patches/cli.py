"""Command line: `apply` (the default), `check`, `regenerate`, `update`, `status`."""
import argparse
import sys

from . import apply, check, regenerate, status, update
from .errors import ToolError
from .progress import Progress
from .series import PROJECT, Project

COMMANDS = {
    "apply": (apply.run, "build the patched tree (the default command)"),
    "check": (check.run, "build in a temporary place, report per patch and lint the series"),
    "regenerate": (regenerate.run, "write the tree's commits back to patches/ and overlay/"),
    "update": (update.run, "move the series to another upstream commit (3-way replay)"),
    "status": (status.run, "show the series and whether the tree matches it"),
}


class _Parser(argparse.ArgumentParser):
  """argparse, but a bad command line is one `error:` line like every other error."""

  def error(self, message):
    print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
    sys.exit(2)


def parser():
  top = _Parser(
      prog="apply_patches.py",
      description="Upstream ALBERT, converted to TensorFlow 2, with this project's patch series.")
  sub = top.add_subparsers(dest="command")
  for name, (_, help_text) in COMMANDS.items():
    cmd = sub.add_parser(name, help=help_text, description=help_text)
    cmd.add_argument("--out", default=str(PROJECT / "build" / "albert"),
                     help="the patched tree (default: build/albert)")
    cmd.add_argument("--upstream", metavar="URL_OR_PATH",
                     help="where to fetch upstream: a git URL, a clone or a bundle "
                          "(default: $ALBERT_UPSTREAM, else the URL in upstream.lock)")
    if name == "regenerate":
      where = cmd.add_mutually_exclusive_group()
      where.add_argument("--into", metavar="PATCH",
                         help="fold the tree's uncommitted changes into this patch "
                              "(file name or subject)")
      where.add_argument("--new", metavar="SUBJECT",
                         help="make the tree's uncommitted changes a new patch with this subject")
    if name == "update":
      cmd.add_argument("--to", metavar="COMMIT", help="the upstream commit to move the pin to")
      cmd.add_argument("--continue", dest="continue_", action="store_true",
                       help="go on after resolving a conflict")
      cmd.add_argument("--abort", action="store_true",
                       help="undo an unfinished update: the tree goes back, nothing is written")
    if name == "apply":
      cmd.add_argument("--force", action="store_true",
                       help="replace a tree even if it has work not in patches/ (it is lost)")
  return top


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
    argv.insert(0, "apply")
  args = parser().parse_args(argv)
  run, _ = COMMANDS[args.command]
  try:
    return run(Project(PROJECT), args, Progress())
  except ToolError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("error: interrupted; nothing was changed", file=sys.stderr)
    return 130
