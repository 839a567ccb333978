"""Writing a tree's commits back to patches/ and overlay/: the one export path of the tool.

`plan` reads the tree and says what patches/ and overlay/ should hold (a Plan); `Plan.write`
stages every file beside its target first and then moves them all into place with Ctrl-C held
off (StGit's transaction), so a run stopped before that step has changed nothing, and one
stopped by an error has changed nothing either. `regenerate` and `update` both use it.
"""
import dataclasses
import os
import re
import signal
import threading
from contextlib import contextmanager

from . import build, git
from .errors import ToolError
from .project import TOPIC, TOPIC_TRAILER, PatchFile

_INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+( \d+)?\n", re.MULTILINE)
STAGED = ".albert-patches-new"  # suffix of a staged file beside its target


@dataclasses.dataclass
class Plan:
  """What patches/ and overlay/ should hold for a tree."""
  files: dict  # {project-relative path: bytes}
  patches: list  # [(patch file name, the tree's commit)], in series order

  @property
  def names(self):
    return [name for name, _ in self.patches]

  def write(self, project, progress):
    """Makes patches/, overlay/ (and any other planned file) hold exactly the plan; returns how
    many files were written or removed. Files whose bytes would not change are not touched."""
    stale = [project.patches_dir / entry for entry in project.patch_paths()
             if f"patches/{entry}" not in self.files]
    stale += [project.overlay_dir / rel for rel in project.overlay_files()
              if f"overlay/{rel}" not in self.files]
    writes = {project.root / rel: data for rel, data in sorted(self.files.items())
              if not ((project.root / rel).is_file()
                      and (project.root / rel).read_bytes() == data)}
    _require_inside(project, list(writes) + stale)
    _require_writable(list(writes), stale)
    with _staged(writes) as staged:
      with _interrupts_held():
        for path, temp in staged.items():
          progress.say(f"{'update' if path.exists() else 'new':<8}"
                       f"{path.relative_to(project.root).as_posix()}")
          os.replace(temp, path)
        for path in stale:
          progress.say(f"{'remove':<8}{path.relative_to(project.root).as_posix()}")
          path.unlink()
          if path.parent != project.patches_dir and not any(path.parent.iterdir()):
            path.parent.rmdir()  # a topic folder whose last patch moved or went
    return len(writes) + len(stale)


def plan(project, tree, record):
  """Reads the tree's commits after the overlay commit into a Plan.

  A commit keeps the patch file it came from: by its `Patch-Name:` trailer, else by subject;
  its `Patch-Topic:` trailer names the folder (a new commit without one goes to the top of
  patches/). A patch file's header is edited in patches/ and kept; a new patch takes its
  commit's body.
  """
  upstream_paths = set(git.run(["ls-tree", "-r", "--name-only", record.converted],
                               cwd=tree).splitlines())
  by_name, by_subject = {}, {}
  for name in project.series():
    patch = project.patch(name)
    by_name[name] = patch
    by_subject.setdefault(patch.subject, patch)
  taken = set(by_name)
  next_number = 1 + max([_number(name) for name in taken] + [0])

  files = {}
  patches = []
  for sha in git.run(["rev-list", "--reverse", f"{record.overlay}..HEAD"], cwd=tree).split():
    message = git.run(["log", "-1", "--format=%B", sha], cwd=tree)
    subject, _, body = message.partition("\n")
    subject = subject.strip()
    changed = git.run(["diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames",
                       f"{sha}^", sha], cwd=tree).splitlines()
    paths = [path for path in changed if path in upstream_paths]
    if not paths:
      continue  # a commit of overlay files only: they are written to overlay/ below
    diff = git.run(["diff-tree", "-p", *git.DIFF_OPTIONS, f"{sha}^", sha, "--", *paths],
                   cwd=tree)
    diff = _INDEX_LINE.sub("", diff)
    topic = _topic(body, sha, subject)
    old = _old_patch(by_name, by_subject, PatchFile.name_from_message(body), topic, subject)
    if old:
      file_name, fields = old.file_name, old.fields
      topic = topic or old.topic
      taken.discard(old.name)
    else:
      file_name = f"{next_number:04d}-{slug(subject)}.patch"
      fields = PatchFile.header_fields_from_message(body)
      next_number += 1
    name = _unique(f"{topic}/{file_name}" if topic else file_name, taken)
    taken.add(name)
    files[f"patches/{name}"] = PatchFile(name, subject, fields, diff).text().encode()
    patches.append((name, sha))

  series_comments = [line for line in project.series_path.read_text(encoding="utf-8").splitlines()
                     if line.startswith("#")]
  files["patches/series"] = ("\n".join(series_comments + [n for n, _ in patches]) + "\n").encode()
  for mode, path in _tree_files(tree):
    if path in upstream_paths:
      continue
    if mode not in ("100644", "100755"):
      raise ToolError(f"{tree}/{path} is {_KINDS.get(mode, 'not a regular file')}; overlay/ "
                      "holds regular files only: commit the file itself (nothing was written)")
    files[f"overlay/{path}"] = git.blob(tree, f"HEAD:{path}")
  return Plan(files, patches)


_KINDS = {"120000": "a symlink", "160000": "a submodule"}


def _tree_files(tree):
  """(mode, path) of every file in the tree's HEAD."""
  out = git.run(["ls-tree", "-r", "-z", "HEAD"], cwd=tree)
  return [(entry.split(" ", 1)[0], entry.split("\t", 1)[1]) for entry in out.split("\0") if entry]


def _topic(body, sha, subject):
  """The folder a commit's `Patch-Topic:` trailer names, checked to be one plain name."""
  topic = PatchFile.trailer(body, TOPIC_TRAILER)
  if topic is not None and not TOPIC.match(topic):
    raise ToolError(f"commit {sha[:7]} ({subject}): `{TOPIC_TRAILER}: {topic}` is not a folder "
                    "name; use one word of lower-case letters, digits and `-`, such as horovod "
                    "(nothing was written)")
  return topic


def _old_patch(by_name, by_subject, name, topic, subject):
  """The patch of the series a commit came from, taken out of `by_name`; None for a new one.

  By the trailers' folder and file name; by file name alone (the folder was changed); else by
  subject (a commit without trailers)."""
  if name:
    for entry in ([f"{topic}/{name}"] if topic else []) + [name]:
      if entry in by_name:
        return by_name.pop(entry)
    moved = [entry for entry in by_name if entry.rsplit("/", 1)[-1] == name]
    if len(moved) == 1:
      return by_name.pop(moved[0])
  old = by_subject.get(subject)
  return by_name.pop(old.name, None) if old else None


def save_record(project, tree, record, planned):
  """Records the tree as matching patches/ and overlay/ as they now are, so apply is a no-op."""
  record.head = git.rev(tree, "HEAD")
  record.patches = [[name, sha] for name, sha in planned.patches]
  record.inputs = build.inputs_digest(project)
  record.save(tree)


def _require_inside(project, paths):
  """Every file the plan writes or removes is in patches/ or overlay/ (or is the lock), with no
  symlink on the way: names that come from a tree or a header never lead anywhere else."""
  for path in paths:
    if path == project.lock_path:
      continue
    top = next((d for d in (project.patches_dir, project.overlay_dir) if d in path.parents), None)
    links = [p for p in [path, *path.parents] if top and top in [p, *p.parents] and p.is_symlink()]
    if top is None or links or ".." in path.relative_to(top).parts:
      raise ToolError(f"refusing to write {path}: outside patches/ and overlay/ or through a "
                      "symlink (nothing was written)")


def _require_writable(writes, removals):
  for path in writes:
    if path.exists() and not path.is_file():
      raise ToolError(f"cannot write {path}: it is a directory; move it away (nothing was "
                      "written)")
    where = path if path.exists() else next(p for p in path.parents if p.exists())
    if not where.is_dir() and where != path:
      raise ToolError(f"cannot write {path}: {where} is a file, not a directory; move it away "
                      "(nothing was written)")
    # the new bytes are staged beside the file and renamed over it: its directory must be
    # writable too
    if not os.access(where, os.W_OK) or where == path and not os.access(path.parent, os.W_OK):
      where = where if not os.access(where, os.W_OK) else path.parent
      raise ToolError(f"cannot write {path}: {where} is read-only; make it writable "
                      "(nothing was written)")
  for path in removals:
    if not os.access(path.parent, os.W_OK):
      raise ToolError(f"cannot remove {path}: {path.parent} is read-only; make it writable "
                      "(nothing was written)")


@contextmanager
def _staged(writes):
  """Writes each file's bytes beside its target; yields {target: staged file}. The staged
  files (and directories made for them) are removed if anything fails before they are moved."""
  made_dirs, staged = [], {}
  try:
    for path, data in writes.items():
      missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
      for directory in reversed(missing):
        directory.mkdir()
        made_dirs.append(directory)
      temp = path.with_name(path.name + STAGED)
      staged[path] = temp
      temp.write_bytes(data)
      if path.exists():
        os.chmod(temp, path.stat().st_mode & 0o7777)
    yield staged
  except BaseException:
    for temp in staged.values():
      if temp.exists():
        temp.unlink()
    for directory in reversed(made_dirs):
      if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
    raise


@contextmanager
def _interrupts_held():
  """Holds a Ctrl-C off until the block is done (renames are quick). A Ctrl-C that came during
  it is dropped: the write is whole by then, and what follows it takes milliseconds."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)


def slug(subject):
  """The file-name part of a patch's subject: lower case, words joined by `-`, at most ~50."""
  slug_ = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")
  if len(slug_) > 50:
    slug_ = slug_[:51].rsplit("-", 1)[0]
  return slug_ or "patch"


def _number(name):
  match = re.match(r"(\d+)-", name.rsplit("/", 1)[-1])
  return int(match.group(1)) if match else 0


def _unique(name, taken):
  """`name`, or `name` with a suffix (-2, -3, ...) that no entry in `taken` has."""
  stem, n = name[:-len(".patch")], 2
  while name in taken:
    name, n = f"{stem}-{n}.patch", n + 1
  return name
