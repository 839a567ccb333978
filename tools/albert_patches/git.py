"""The one way this project drives git (the tool, its tests and the bench): GitPython's `Git`.

Every command runs with the same pinned settings, so the trees and patches we make depend on
nothing but their inputs: no system or global git config (the settings that shape a diff or a
commit are also pinned with `-c`, which beats a repository's own config), `LC_ALL=C` messages,
no prompts, a fixed identity and, where a commit is made, fixed dates.

`run` returns a command's output as text; `blob` returns a file's bytes exactly; a failing
command raises GitError, which carries git's exit status and output. GitPython is imported on
first use: a command that never runs git does not pay for it.
"""
import contextlib
import os
import sys
import tempfile

from .errors import ToolError

IDENTITY = ("albert-patches", "albert-patches@invalid")

CONFIG = [
    "-c", "core.autocrlf=false",
    "-c", "core.safecrlf=false",
    "-c", "commit.gpgsign=false",
    "-c", "tag.gpgsign=false",
    "-c", "advice.detachedHead=false",
    "-c", "init.defaultBranch=patched",
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicPrefix=false",
    "-c", "color.ui=false",
]

# How a commit becomes a patch, whatever the config says: plain text, three lines of context,
# the same algorithm everywhere, no renames, a/ and b/ prefixes.
DIFF_OPTIONS = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
                "--diff-algorithm=myers", "-U3", "--src-prefix=a/", "--dst-prefix=b/"]

ISOLATION = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
             "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"}


class GitError(ToolError):
  """A git command that failed: `status`, `stdout` and `stderr` (text) say how."""

  def __init__(self, args, status, stdout, stderr):
    message = (stderr.strip() or stdout.strip()).splitlines()
    super().__init__(f"git {' '.join(args)} failed: {message[-1] if message else status}")
    self.status = status
    self.stdout = stdout
    self.stderr = stderr


def run(args, cwd=None, date=None, input=None, identity=IDENTITY, config=(), env=None):
  """Runs `git ARGS` in `cwd` and returns its stdout; raises GitError if it fails.

  `date` pins author and committer dates, so the commits made are reproducible; `identity` is
  the (name, email) they are made by; `config` adds `-c` options; `input` is fed to stdin.
  """
  out, err = _execute(args, cwd, date, input, identity, config, env)
  where = f" in {cwd}" if cwd else ""
  try:
    return out.decode()
  except UnicodeDecodeError:
    raise ToolError(f"git {args[0]}{where} gave bytes that are not UTF-8 (a file in a commit "
                    "is not UTF-8 text?); patches hold UTF-8 text only: save the file as UTF-8, "
                    "or if upstream lacks it, it belongs in overlay/") from None


def blob(repo, spec):
  """The bytes of a file in git (`spec` is e.g. `HEAD:path`), exactly."""
  return _execute(["show", spec], repo, None, None, IDENTITY, (), None)[0]


def succeeds(args, cwd=None):
  """Whether `git ARGS` exits 0: for the commands that answer yes or no by their status."""
  try:
    _execute(args, cwd, None, None, IDENTITY, (), None)
  except GitError:
    return False
  return True


def _git():
  """GitPython's Git class, imported on first use (the import takes a tenth of a second)."""
  try:
    from git.cmd import Git  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ToolError(f"GitPython is missing: {sys.executable} cannot import git; run "
                    "`make setup` (or `pip install -r requirements.txt` in this Python)") from None
  return Git


def _execute(args, cwd, date, input, identity, config, env):
  Git = _git()  # pylint: disable=invalid-name
  full_env = dict(ISOLATION, GIT_AUTHOR_NAME=identity[0], GIT_AUTHOR_EMAIL=identity[1],
                  GIT_COMMITTER_NAME=identity[0], GIT_COMMITTER_EMAIL=identity[1], **(env or {}))
  if date:
    full_env["GIT_AUTHOR_DATE"] = full_env["GIT_COMMITTER_DATE"] = date
  command = [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *CONFIG, *config, *map(str, args)]
  with contextlib.ExitStack() as stack:
    stdin = None  # GitPython then gives git /dev/null
    if input is not None:  # a file, as Popen needs one with a descriptor
      stdin = stack.enter_context(tempfile.TemporaryFile())
      stdin.write(input.encode())
      stdin.seek(0)
    status, out, err = Git(str(cwd) if cwd else None).execute(
        command, istream=stdin, env=full_env, with_extended_output=True, with_exceptions=False,
        stdout_as_string=False, strip_newline_in_stdout=False)
  if isinstance(err, bytes):  # GitPython hands stderr back decoded when the command failed
    err = err.decode(errors="replace")
  if status != 0:
    raise GitError(list(map(str, args)), status, out.decode(errors="replace"), err)
  return out, err


def apply(tree, diff):
  """`git apply --verbose` of `diff` in `tree`; returns git's report (stderr: offsets applied)."""
  return _execute(["apply", "--verbose", "--whitespace=nowarn", "-"], tree, None, diff, IDENTITY,
                  (), None)[1]


def rev(repo, name):
  """The full hash that `name` (a commit, `X^{tree}`, a ref) stands for in `repo`."""
  return run(["rev-parse", "--verify", "-q", name], cwd=repo).strip()


def rev_or_none(repo, name):
  """The full hash `name` stands for, or None if there is no such object."""
  try:
    return rev(repo, name)
  except GitError:
    return None


def commit_all(tree, message, date):
  """Commits every change in the tree (new files included) with the tool's identity."""
  run(["add", "-A"], cwd=tree)
  run(["commit", "-q", "--allow-empty", "-m", message], cwd=tree, date=date)
  return rev(tree, "HEAD")


def has_commit(repo, sha):
  return succeeds(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo)


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
