"""`apply`: build the patched tree at --out, or say it is up to date."""
from pathlib import Path

from .. import build, convert, fetch, file_locks, staging
from . import options
from ..errors import ToolError
from ..upstream_lock import Lock
from ..record import Record, UnreadableRecord
from ..update_state import require_no_update
from ..work import work_not_in_patches

HELP = "build the patched tree (the default command)"


def add_arguments(parser, root):
  options.add_out(parser, root)
  options.add_upstream(parser)
  parser.add_argument("--force", action="store_true",
                      help="replace a tree even if it has work not in patches/ (it is lost)")


def run(project, args, progress):
  out = Path(args.out).resolve()
  lock = Lock.read(project.lock_path)
  project.series()  # reports a broken series before anything else
  # Every build converts, and without a converter the tree can never be up to date: the
  # digest names the converter's version.
  convert.require_converter()
  digest = build.inputs_digest(project)
  staging.require_buildable(out)

  with file_locks.tree(out, progress.say):
    staging.recover(out, progress.say)
    if out.exists():
      try:
        record = Record.load(out)
      except UnreadableRecord:
        if not args.force:
          raise
        record = False  # built by another version of the tool: --force replaces it
      if record is None:
        if any(out.iterdir()):
          raise ToolError(f"{out} exists and was not built by this tool; move it away or "
                          "choose another --out")
      elif record:
        require_no_update(out)
        work = work_not_in_patches(out, record)
        if work and not args.force:
          raise ToolError(f"{out} has work that is not in patches/: {', '.join(work)}; keep it "
                          "by committing it on top of the series and running "
                          "`tools/apply_patches.py regenerate`, or discard it with "
                          "`apply --force`")
        if not work and record.inputs == digest:
          progress.say(f"{out} is up to date with the lock, series, patches and overlay; "
                       "nothing to do")
          return 0

    source = fetch.resolve_source(args.upstream, lock)
    with staging.staging_dir(out) as built:
      record, _ = build.build(project, lock, source, built, progress, digest)
      staging.replace(out, built)
  progress.say(f"done: {out} is upstream {lock.commit[:12]} with {len(record.patches)} patches; "
               f"run a script from it, e.g. `python {_shown(out)}/run_pretraining.py --helpfull`")
  return 0


def _shown(path):
  try:
    return str(path.relative_to(Path.cwd()))
  except ValueError:
    return str(path)
