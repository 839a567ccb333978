"""Work in a built tree that is in no patch: what `apply` would lose and `regenerate` would keep."""
from . import git

SERIES_BRANCH = "refs/heads/patched"


def uncommitted(tree):
  """`git status` lines of changed, staged and untracked files (ignored ones excluded)."""
  out = git.run(["status", "--porcelain", "--untracked-files=all"], cwd=tree)
  return [line for line in out.splitlines() if line]


def commits_after(tree, base):
  """One-line descriptions of the commits on HEAD after `base`, oldest first."""
  out = git.run(["log", "--reverse", "--format=%h %s", f"{base}..HEAD"], cwd=tree)
  return [line for line in out.splitlines() if line]


def work_not_in_patches(tree, record):
  """What `apply` would lose: uncommitted files, commits since the last series commit, and
  every other branch, tag, stash or ref."""
  found = [f"uncommitted {line[3:]}" for line in uncommitted(tree)]
  if not git.succeeds(["merge-base", "--is-ancestor", record.head, "HEAD"], cwd=tree):
    found.append(f"history rewritten after {record.head[:7]} (HEAD is "
                 f"{git.run(['rev-parse', '--short', 'HEAD'], cwd=tree).strip()})")
  else:
    found += [f"commit {line}" for line in commits_after(tree, record.head)]
  return found + other_refs(tree)


def other_refs(tree):
  """Refs besides the series branch and the branch checked out: work that is in no patch."""
  found = []
  for line in git.run(["for-each-ref", "--format=%(HEAD) %(refname)"], cwd=tree).splitlines():
    current, ref = line[0], line[2:]  # %(HEAD) is "*" for the branch checked out, else " "
    if ref == SERIES_BRANCH or current == "*":
      continue
    if ref == "refs/stash":
      count = len(git.run(["stash", "list"], cwd=tree).splitlines())
      found.append(f"stash ({count} {'entry' if count == 1 else 'entries'}, see `git stash list`)")
    elif ref.startswith("refs/heads/"):
      found.append(f"branch {ref[len('refs/heads/'):]}")
    elif ref.startswith("refs/tags/"):
      found.append(f"tag {ref[len('refs/tags/'):]}")
    else:
      found.append(f"ref {ref}")
  return found
