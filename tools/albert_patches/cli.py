"""Command line: `apply` (the default), `check`, `regenerate`, `update`, `status`.

Each command is a module that declares its own options (`add_arguments`) and help (`HELP`) and
does its job (`run`); this module only builds the parser from them and dispatches.
"""
import argparse
import sys
from pathlib import Path

from .commands import apply, check, regenerate, status, update
from .errors import ToolError
from .progress import Progress
from .project import PROJECT, Project

COMMANDS = {"apply": apply, "check": check, "regenerate": regenerate, "update": update,
            "status": status}


class _Parser(argparse.ArgumentParser):
  """argparse, but a bad command line is one `error:` line like every other error."""

  def error(self, message):
    print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
    sys.exit(2)


def parser(root=PROJECT):
  top = _Parser(
      prog="apply_patches.py",
      description="Upstream ALBERT, converted to TensorFlow 2, with this project's patch series.")
  sub = top.add_subparsers(dest="command")
  for name, command in COMMANDS.items():
    command.add_arguments(sub.add_parser(name, help=command.HELP, description=command.HELP), root)
  return top


def main(argv=None, root=PROJECT):
  """Runs the tool on the project at `root` (the checkout this file is in, by default)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
    argv.insert(0, "apply")
  args = parser(Path(root)).parse_args(argv)
  try:
    project = Project(Path(root))
    # Before any command reads or writes anything: every series entry is a file inside
    # patches/, and overlay/ holds regular files only.
    project.series()
    project.overlay_files()
    return COMMANDS[args.command].run(project, args, Progress())
  except ToolError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("error: interrupted; nothing was changed", file=sys.stderr)
    return 130
