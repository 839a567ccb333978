"""`update --to COMMIT`: move the series to another upstream commit.

The tree's patch commits are replayed (3-way, with git cherry-pick) on the new commit's
conversion. A conflict stops the update with the tree mid-way, for the user to resolve with
git; `--continue` goes on, `--abort` restores the tree. patches/, overlay/ and upstream.lock are
written only when every patch is replayed, so nothing of the project is half-updated.
"""
import re
from pathlib import Path

from .. import build, convert, export, fetch, file_locks, git
from . import options
from ..errors import ToolError
from ..upstream_lock import Lock
from ..record import Record, require_built
from ..update_state import UpdateState, require_no_update
from ..work import work_not_in_patches

HELP = "move the series to another upstream commit (3-way replay)"


def add_arguments(parser, root):
  options.add_out(parser, root)
  options.add_upstream(parser)
  parser.add_argument("--to", metavar="COMMIT", help="the upstream commit to move the pin to")
  parser.add_argument("--continue", dest="continue_", action="store_true",
                      help="go on after resolving a conflict")
  parser.add_argument("--abort", action="store_true",
                      help="undo an unfinished update: the tree goes back, nothing is written")


def run(project, args, progress):
  tree = Path(args.out).resolve()
  record = require_built(tree)
  if args.abort or args.continue_:
    state = UpdateState.load(tree)
    if state is None:
      raise ToolError(f"no update is in progress in {tree}")
    if args.abort:
      return _abort(tree, state, progress)
    return _replay(project, tree, state, progress)
  require_no_update(tree)
  if not args.to:
    raise ToolError("say which upstream commit to move to: update --to COMMIT")
  work = work_not_in_patches(tree, record)
  if work:
    raise ToolError(f"{tree} has work that is not in patches/: {', '.join(work)}; run "
                    "`regenerate` first (or `apply --force` to drop it)")
  if record.inputs != build.inputs_digest(project):
    raise ToolError(f"{tree} is behind the project (the lock, patches/, overlay/, the converter "
                    "or the tool changed since it was built); run `apply` first so the tree is "
                    "the series being moved")

  lock = Lock.read(project.lock_path)
  version = convert.require_converter()
  source = fetch.resolve_source(args.upstream, lock)
  old_head = git.rev(tree, "HEAD")
  with file_locks.cache(progress.notice):
    commit = _resolve(args.to, source)
    try:  # build's own stages, on the tree moved to the new commit
      date, converted, overlay_sha = build.base(project, tree, commit, source, version, progress)
    except BaseException:
      git.run(["checkout", "-q", "-f", "-B", "patched", old_head], cwd=tree)
      git.checkout_modes(tree)
      raise
  state = UpdateState(to=commit, from_head=old_head, record=record.to_dict(), date=date,
                      converted=converted, overlay=overlay_sha, tensorflow=version,
                      pending=[[name, sha] for name, sha in record.patches], done=[])
  state.save(tree)
  return _replay(project, tree, state, progress)


def _resolve(rev, source):
  """The full hash of `rev`, a full or abbreviated commit hash."""
  if not re.fullmatch(r"[0-9a-f]{7,40}", rev):
    raise ToolError(f"--to {rev}: give a commit hash (7 to 40 hex digits)")
  if len(rev) == 40:
    return rev
  repo = fetch.mirror()
  found = git.rev_or_none(repo, f"{rev}^{{commit}}")
  if found is None:
    fetch.fetch_refs(source)
    found = git.rev_or_none(repo, f"{rev}^{{commit}}")
  if found is None:
    raise ToolError(f"commit {rev} is not in {source} (or is ambiguous); give the full hash")
  return found


def _replay(project, tree, state, progress):
  if (tree / ".git" / "CHERRY_PICK_HEAD").exists():
    if git.run(["diff", "--name-only", "--diff-filter=U"], cwd=tree).strip():
      raise ToolError("conflicts are still unresolved; edit the files, `git add` them, then "
                      "`update --continue`")
    git.run(["-c", "core.editor=true", "cherry-pick", "--continue"], cwd=tree, date=state.date)
  if state.current:
    state.done.append(state.current)
    state.current = None
  while state.pending:
    name, sha = state.pending.pop(0)
    try:
      git.run(["cherry-pick", "--allow-empty", sha], cwd=tree, date=state.date)
    except git.GitError:
      state.current = [name, sha]
      state.save(tree)
      raise ToolError(f"patch {name} conflicts with upstream {state.to[:12]}: "
                      f"{_conflicts(tree)}. Resolve them in {tree} with git (edit, `git add`), "
                      "then `update --continue`; or `update --abort` to undo")
    state.done.append([name, sha])
  return _finish(project, tree, state, progress)


def _conflicts(tree):
  names = git.run(["diff", "--name-only", "--diff-filter=U"], cwd=tree).split()
  where = []
  for name in names:
    lines = (tree / name).read_text(encoding="utf-8", errors="replace").splitlines()
    starts = [str(i) for i, line in enumerate(lines, 1) if line.startswith("<<<<<<<")]
    where.append(f"{name} (conflict at line {', '.join(starts)})" if starts else name)
  return ", ".join(where) or "the patch does not apply"


def _finish(project, tree, state, progress):
  old = {name: (project.patches_dir / name).read_bytes() for name, _ in state.done}
  record = Record.from_dict({**state.record, "upstream": state.to, "converted": state.converted,
                             "overlay": state.overlay, "date": state.date}, UpdateState.path(tree))
  # The new commits carry the old Patch-Name trailers, so every patch keeps its name and header.
  plan = export.plan(project, tree, record)
  for name in plan.names:
    same = plan.files[f"patches/{name}"] == old.get(name)
    progress.say(f"{'unchanged' if same else 'refreshed':<10}{name}")
  lock = Lock.read(project.lock_path)
  new_lock = Lock(url=lock.url, commit=state.to, tree=git.rev(tree, f"{state.to}^{{tree}}"),
                  tensorflow=state.tensorflow,
                  converted_tree=git.rev(tree, f"{state.converted}^{{tree}}"))
  plan.files[project.lock_path.relative_to(project.root).as_posix()] = new_lock.text().encode()
  plan.write(project, progress)  # patches/, overlay/ and the lock, in one step
  export.save_record(project, tree, record, plan)
  state.remove(tree)
  progress.say(f"done: upstream.lock now pins {state.to[:12]}; {len(plan.patches)} patches "
               "replayed")
  return 0


def _abort(tree, state, progress):
  if (tree / ".git" / "CHERRY_PICK_HEAD").exists():
    git.run(["cherry-pick", "--abort"], cwd=tree)
  git.run(["reset", "-q", "--hard"], cwd=tree)
  git.run(["checkout", "-q", "-f", "-B", "patched", state.from_head], cwd=tree)
  git.run(["clean", "-q", "-fd"], cwd=tree)
  git.checkout_modes(tree)  # tf_upgrade_v2 wrote files 0600 that checkout left as they were
  Record.from_dict(state.record, UpdateState.path(tree)).save(tree)
  state.remove(tree)
  progress.say(f"aborted: {tree} is back at {state.from_head[:12]}; patches/ and "
               "upstream.lock were not changed")
  return 0
