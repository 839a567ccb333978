"""`regenerate`: write the tree's commits back as patches/ and overlay/.

Each commit after the overlay commit becomes one patch; files upstream does not have go to
overlay/. Files whose bytes would not change are not written, so a regenerate with no edits
leaves the project untouched.
"""
import os
import re
from pathlib import Path

from . import build, git, options
from .errors import ToolError
from .series import PatchFile
from .tree import require_built, require_no_update, uncommitted

_INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+( \d+)?\n", re.MULTILINE)

HELP = "write the tree's commits back to patches/ and overlay/"


def add_arguments(parser, root):
  options.add_out(parser, root)
  where = parser.add_mutually_exclusive_group()
  where.add_argument("--into", metavar="PATCH",
                     help="fold the tree's uncommitted changes into this patch "
                          "(file name or subject)")
  where.add_argument("--new", metavar="SUBJECT",
                     help="make the tree's uncommitted changes a new patch with this subject")


def run(project, args, progress):
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

  plan = plan_files(project, tree, record)
  changed = write_plan(project, plan, progress)
  save_record(project, tree, record, plan)
  progress.say(f"done: {len(plan['commits'])} patches; {changed} files in patches/ and overlay/ "
               "changed" if changed else "done: patches/ and overlay/ already match the tree")
  return 0


def save_record(project, tree, record, plan):
  """Records the tree as matching patches/ and overlay/ as they now are, so apply is a no-op."""
  record.head = git.rev(tree, "HEAD")
  record.patches = [[name, sha] for name, sha in plan["commits"]]
  record.inputs = build.inputs_digest(project)
  record.save(tree)


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
    git.run(["add", "-A"], cwd=tree)
    git.run(["commit", "-q", "-m", args.new], cwd=tree)
    return
  subjects = _subjects(tree, record)
  wanted = args.into.removeprefix("patches/")
  target = next((sha for sha, subject, name in subjects if wanted in (subject, name)), None)
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


def plan_files(project, tree, record):
  """What patches/ and overlay/ should hold for the tree as it is: {path: bytes} and the order."""
  upstream_paths = set(git.run(["ls-tree", "-r", "--name-only", record.converted],
                               cwd=tree).splitlines())
  existing = {}
  for name in project.series():
    patch = project.patch(name)
    existing.setdefault(patch.subject, patch)
  taken = set(existing_name for existing_name in (p.name for p in existing.values()))
  next_number = 1 + max([_number(name) for name in taken] + [0])

  files = {}
  order = []
  commits = []
  for sha in git.run(["rev-list", "--reverse", f"{record.overlay}..HEAD"], cwd=tree).split():
    message = git.run(["log", "-1", "--format=%B", sha], cwd=tree)
    subject, _, body = message.partition("\n")
    subject = subject.strip()
    changed = git.run(["diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames",
                       f"{sha}^", sha], cwd=tree).splitlines()
    paths = [path for path in changed if path in upstream_paths]
    if not paths:
      continue  # a commit of overlay files only: they are written to overlay/ below
    diff = git.run(["diff-tree", "-p", *git.DIFF_OPTIONS, f"{sha}^", sha, "--", *paths], cwd=tree)
    diff = _INDEX_LINE.sub("", diff)
    old = existing.pop(subject, None)
    # A patch file's header is edited in patches/ and kept; a new patch takes its commit's body.
    fields = old.fields if old else PatchFile.header_fields_from_message(body)
    if old:
      name = old.name
    else:
      name = _unique(f"{next_number:04d}-{_slug(subject)}.patch", taken)
      next_number += 1
      taken.add(name)
    files[f"patches/{name}"] = PatchFile(name, subject, fields, diff).text().encode()
    order.append(name)
    commits.append((name, sha))

  series_comments = [line for line in project.series_path.read_text(encoding="utf-8").splitlines()
                     if line.startswith("#")]
  files["patches/series"] = ("\n".join(series_comments + order) + "\n").encode()
  head_files = git.run(["ls-tree", "-r", "--name-only", "HEAD"], cwd=tree).splitlines()
  for path in head_files:
    if path not in upstream_paths:
      files[f"overlay/{path}"] = git.blob(tree, f"HEAD:{path}")
  return {"files": files, "order": order, "commits": commits}


def write_plan(project, plan, progress, also=()):
  """Writes the planned files that differ and removes patches and overlay files no longer there.

  Every file to write or remove (and the paths in `also`, which the caller writes next) is
  checked first, so that a read-only file or directory stops us before anything changed.
  """
  files = plan["files"]
  stale = [p for p in project.patches_dir.glob("*.patch")
           if f"patches/{p.name}" not in files]
  stale += [project.overlay_dir / rel for rel in project.overlay_files()
            if f"overlay/{rel}" not in files]
  writes = {rel: data for rel, data in sorted(files.items())
            if not ((project.root / rel).is_file() and (project.root / rel).read_bytes() == data)}
  _require_writable([project.root / rel for rel in writes] + list(also), stale)
  changed = 0
  for rel, data in writes.items():
    path = project.root / rel
    progress.say(f"{'update' if path.exists() else 'new':<8}{rel}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    changed += 1
  for path in stale:
    progress.say(f"{'remove':<8}{path.relative_to(project.root).as_posix()}")
    path.unlink()
    changed += 1
  return changed


def _require_writable(writes, removals):
  for path in writes:
    where = path if path.exists() else next(p for p in path.parents if p.exists())
    if not os.access(where, os.W_OK):
      raise ToolError(f"cannot write {path}: {where} is read-only; make it writable "
                      "(nothing was written)")
  for path in removals:
    if not os.access(path.parent, os.W_OK):
      raise ToolError(f"cannot remove {path}: {path.parent} is read-only; make it writable "
                      "(nothing was written)")


def _slug(subject):
  slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")
  if len(slug) > 50:
    slug = slug[:51].rsplit("-", 1)[0]
  return slug or "patch"


def _number(name):
  match = re.match(r"(\d+)-", name)
  return int(match.group(1)) if match else 0


def _unique(name, taken):
  stem, n = name[:-len(".patch")], 2
  while name in taken:
    name, n = f"{stem}-{n}.patch", n + 1
  return name
