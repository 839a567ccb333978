"""Stage 1, fetch: upstream objects into a bare mirror in the cache, then a checkout of the pin."""
import hashlib
import os
from pathlib import Path

from . import git
from .errors import ToolError


def cache_dir():
  explicit = os.environ.get("ALBERT_PATCHES_CACHE")
  if explicit:
    return Path(explicit)
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "albert-patches"


def resolve_source(cli_value, lock):
  """--upstream, else ALBERT_UPSTREAM, else the lock's URL; local paths made absolute.

  The source is only read when the cache lacks a commit, so it need not exist or be reachable
  when everything is cached.
  """
  source = cli_value or os.environ.get("ALBERT_UPSTREAM") or lock.url
  if _is_local(source):
    source = str(Path(source).expanduser().resolve())
  return source


def _is_local(source):
  return "://" not in source and not source.startswith("git@")


def mirror():
  """The bare mirror that holds every upstream object fetched so far (created on first use)."""
  path = cache_dir() / "upstream.git"
  if not (path / "HEAD").exists():
    path.mkdir(parents=True, exist_ok=True)
    git.run(["init", "-q", "--bare", str(path)])
  return path


def ensure_commit(commit, source):
  """Makes `commit` present in the mirror, fetching from `source` only when it is not.

  Returns a few words on what happened, for the progress line.
  """
  repo = mirror()
  if git.has_commit(repo, commit):
    git.run(["update-ref", f"refs/pinned/{commit}", commit], cwd=repo)
    return "from cache"
  fetch_refs(source)
  if not git.has_commit(repo, commit):
    # Not on any branch or tag: servers such as GitHub still serve a commit asked for by hash.
    try:
      git.run(["fetch", "-q", "--no-tags", source, commit], cwd=repo)
    except git.GitError:
      pass  # the check below names the commit and the source
  if not git.has_commit(repo, commit):
    raise ToolError(f"commit {commit} is not in {source}; check the hash, or point "
                    "--upstream at a source that has it")
  git.run(["update-ref", f"refs/pinned/{commit}", commit], cwd=repo)
  return f"from {source}"


def fetch_refs(source):
  """Fetches every branch and tag of `source` into the mirror, under a name of its own."""
  if _is_local(source) and not Path(source).exists():
    raise ToolError(f"upstream source {source} does not exist; pass a git URL, a clone "
                    "or a bundle with --upstream (or ALBERT_UPSTREAM)")
  key = hashlib.sha256(source.encode()).hexdigest()[:12]
  try:
    git.run(["fetch", "-q", "--no-tags", source, f"+refs/heads/*:refs/sources/{key}/heads/*",
             f"+refs/tags/*:refs/sources/{key}/tags/*"], cwd=mirror())
  except git.GitError as e:
    reason = (e.stderr.strip().splitlines() or ["no answer"])[-1]
    raise ToolError(f"cannot fetch upstream from {source} ({reason}); point --upstream "
                    "(or ALBERT_UPSTREAM) at a reachable URL, a local clone or a bundle")


def checkout(commit, expected_tree, dest):
  """Makes `dest` a repository at `commit` (from the mirror) and verifies commit and tree.
  `dest` may already be a repository (a built tree that `update` moves): its series branch is
  then moved to `commit`."""
  git.run(["init", "-q", str(dest)])
  git.run(["fetch", "-q", "--no-tags", str(mirror()), f"refs/pinned/{commit}"], cwd=dest)
  git.run(["checkout", "-q", "-B", "patched", commit], cwd=dest)
  head = git.rev(dest, "HEAD")
  tree = git.rev(dest, "HEAD^{tree}")
  if head != commit:
    raise ToolError(f"checked out {head}, not the pinned {commit}")
  if expected_tree and tree != expected_tree:
    raise ToolError(f"commit {commit} has tree {tree}, not the lock's {expected_tree}; "
                    "the source is not the upstream the lock was made from")
  exclude = Path(dest) / ".git" / "info" / "exclude"
  exclude.parent.mkdir(parents=True, exist_ok=True)
  if "__pycache__/\n" not in (exclude.read_text(encoding="utf-8") if exclude.exists() else ""):
    with open(exclude, "a", encoding="utf-8") as f:
      f.write("__pycache__/\n*.pyc\n")
  return commit_date(dest, commit)


def commit_date(repo, commit):
  return git.run(["log", "-1", "--format=%cI", commit], cwd=repo).strip()
