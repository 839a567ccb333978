"""The pipeline: fetch, convert, overlay, patch, into a new directory, with a line per stage."""
from pathlib import Path

from . import convert, fetch, file_locks, overlay, patching
from .record import Record

TOOL_FILES = sorted(Path(__file__).parent.rglob("*.py"))


def inputs_digest(project):
  return project.inputs_digest(convert.installed_tensorflow() or "none", TOOL_FILES)


def base(project, tree, commit, source, version, progress, lock=None):
  """Stages 1 to 3 (fetch, convert, overlay): `tree` becomes upstream `commit`, converted, with
  the overlay on top. `tree` is a new directory, or a built tree whose work is all in patches/
  (update moves it to another commit). With the project's `lock`, the fetched tree and the
  conversion are checked against it. The caller holds the cache lock.

  Returns (the commits' date, the conversion commit, the overlay commit).
  """
  with progress.stage("fetch") as line:
    line.detail = f"{commit[:12]} {fetch.ensure_commit(commit, source)}"
    date = fetch.checkout(commit, lock.tree if lock else None, tree)
  with progress.stage("convert") as line:
    converted, line.detail = convert.convert(tree, commit, version, date)
    if lock and convert.converted_tree(tree) != lock.converted_tree:
      line.detail += (f"; differs from the lock's conversion (TensorFlow {lock.tensorflow})")
  with progress.stage("overlay") as line:
    overlay_sha, count = overlay.add_overlay(project, tree, date)
    line.detail = f"{count} files from overlay/"
  return date, converted, overlay_sha


def build(project, lock, source, dest, progress, digest, applied=None):
  """Builds the patched tree at `dest` (which must not exist) and returns its Record.

  Returns the offsets git reported as well: [(patch name, [notes])]. `applied`, if given, is a
  list that gets the same entries as each patch applies, so a caller still has them when a
  later patch fails.
  """
  version = convert.require_converter()
  warning = convert.converter_warning(version, lock)
  if warning:
    progress.say(warning)
  names = project.series()
  patches = [project.patch(name) for name in names]

  with file_locks.cache(progress.notice):
    date, converted, overlay_sha = base(project, dest, lock.commit, source, version, progress,
                                        lock=lock)
  applied_commits = []
  offsets = [] if applied is None else applied
  head = overlay_sha
  for patch in patches:
    with progress.stage("patch") as line:
      line.detail = patch.name
      head, notes = patching.apply_patch(dest, patch, date)
      if notes:
        line.detail += " (" + "; ".join(notes) + ")"
    applied_commits.append([patch.name, head])
    offsets.append((patch.name, notes))
  record = Record(inputs=digest, upstream=lock.commit, converted=converted, overlay=overlay_sha,
                  head=head, patches=applied_commits, date=date)
  record.save(dest)
  return record, offsets
