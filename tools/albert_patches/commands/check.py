"""`check`: build the series in a temporary place, report each patch, lint it; change nothing."""
import io
import tempfile
from pathlib import Path

from .. import build, fetch
from . import options
from ..errors import PatchDoesNotApply, ToolError
from ..lint import lint_patch
from ..upstream_lock import Lock
from ..progress import Progress

HELP = "build in a temporary place, report per patch and lint the series"


def add_arguments(parser, root):  # pylint: disable=unused-argument  (check writes no tree)
  options.add_upstream(parser)


def run(project, args, progress):
  lock = Lock.read(project.lock_path)
  names = project.series()
  overlay_files = set(project.overlay_files())
  problems = {}
  for name in names:
    found = lint_patch(project.patch(name), overlay_files)
    if found:
      problems[name] = found
  source = fetch.resolve_source(args.upstream, lock)
  with tempfile.TemporaryDirectory(prefix="albert-check-") as tmp:
    quiet = Progress(stream=io.StringIO(), notices=progress.stream)
    offsets = []  # filled patch by patch, so it holds the patches applied before a failure
    try:
      build.build(project, lock, source, Path(tmp) / "albert", quiet,
                  build.inputs_digest(project), applied=offsets)
    except PatchDoesNotApply as e:
      failed, failed_patch = e, e.patch
    except ToolError as e:
      failed, failed_patch = e, None
    else:
      failed = failed_patch = None
  for name, notes in offsets:
    if notes:
      problems.setdefault(name, []).append("applies only with an offset: " + "; ".join(notes))
  applied = {name for name, _ in offsets}
  for name in names:
    status = "applies" if name in applied else "not tried"
    if name == failed_patch:
      status = "FAILS"
    line = f"{status:<10}{name}"
    if problems.get(name):
      line += "  -- " + "; ".join(problems[name])
    progress.say(line)
  if failed:
    raise failed
  if problems:
    raise ToolError(f"{len(problems)} of {len(names)} patches need attention (see above)")
  progress.say(f"ok: {len(names)} patches apply exactly on {lock.commit[:12]} and pass the lint")
  return 0
