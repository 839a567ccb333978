"""Runs git with settings that make the trees we build reproducible and independent of user config."""
import os
import subprocess

from .errors import ToolError

IDENTITY = ("albert-patches", "albert-patches@invalid")

_CONFIG = [
    "-c", "core.autocrlf=false",
    "-c", "core.safecrlf=false",
    "-c", "commit.gpgsign=false",
    "-c", "advice.detachedHead=false",
    "-c", "init.defaultBranch=patched",
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicPrefix=false",
]


def run(args, cwd=None, check=True, date=None, input=None):
  """Runs `git ARGS` and returns its stdout; raises ToolError with git's message on failure.

  `date` pins author and committer dates so that commits we make are reproducible.
  """
  env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C",
             GIT_AUTHOR_NAME=IDENTITY[0], GIT_AUTHOR_EMAIL=IDENTITY[1],
             GIT_COMMITTER_NAME=IDENTITY[0], GIT_COMMITTER_EMAIL=IDENTITY[1])
  if date:
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
  proc = subprocess.run(["git", *_CONFIG, *args], cwd=cwd, env=env,
                        input=input.encode() if input is not None else None, capture_output=True)
  try:
    proc.stdout = proc.stdout.decode()
  except UnicodeDecodeError:
    where = f" in {cwd}" if cwd else ""
    raise ToolError(f"git {args[0]}{where} gave bytes that are not UTF-8 (a file in a commit "
                    "is not UTF-8 text?); patches hold UTF-8 text only: save the file as UTF-8, "
                    "or if upstream lacks it, it belongs in overlay/") from None
  proc.stderr = proc.stderr.decode(errors="replace")
  if check and proc.returncode != 0:
    raise GitError(args, proc)
  return proc if not check else proc.stdout


class GitError(ToolError):

  def __init__(self, args, proc):
    message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    super().__init__(f"git {' '.join(args)} failed: {message[-1] if message else proc.returncode}")
    self.proc = proc


def run_bytes(args, cwd=None):
  """Runs `git ARGS` and returns its stdout as bytes (file contents, exactly)."""
  proc = subprocess.run(["git", *_CONFIG, *args], cwd=cwd, capture_output=True)
  if proc.returncode != 0:
    raise ToolError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
  return proc.stdout


def rev(repo, name):
  """The full hash that `name` (a commit, `X^{tree}`, a ref) stands for in `repo`."""
  return run(["rev-parse", "--verify", "-q", name], cwd=repo).strip()


def commit_all(tree, message, date):
  """Commits every change in the tree (new files included) with the tool's identity."""
  run(["add", "-A"], cwd=tree)
  run(["commit", "-q", "--allow-empty", "-m", message], cwd=tree, date=date)
  return rev(tree, "HEAD")


def has_commit(repo, sha):
  return run(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, check=False).returncode == 0


def checkout_modes(tree):
  """Gives every tracked file the mode `git checkout` would give it (0666 or 0777, less umask).

  tf_upgrade_v2 rewrites the files it changes with mode 0600, and git keeps a file's mode when
  its content does not change; so without this a tree's modes would depend on how it was built.
  """
  umask = os.umask(0)
  os.umask(umask)
  for entry in run(["ls-files", "-s", "-z"], cwd=tree).split("\0"):
    if not entry:
      continue
    mode, _, rest = entry.partition(" ")
    if mode not in ("100644", "100755"):
      continue  # symlinks and submodules have no mode of their own
    path = os.path.join(tree, rest.split("\t", 1)[1])
    wanted = (0o777 if mode == "100755" else 0o666) & ~umask
    try:
      if os.stat(path).st_mode & 0o7777 != wanted:
        os.chmod(path, wanted)
    except FileNotFoundError:
      continue
