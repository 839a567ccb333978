"""Helpers for the tests of tools/apply_patches.py: a tiny upstream, and a project the tool runs on.

Everything is real: git (driven through the tool's own git layer, GitPython), tf_upgrade_v2
and the tool, run as a subprocess. One cache directory
(ALBERT_PATCHES_CACHE) is shared by the whole session, so tf_upgrade_v2 runs once per upstream
commit; the tiny upstream has fixed dates and identities, so its commits are the same every time.
"""
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from albert_patches import convert
from albert_patches import git as gitlayer
from albert_patches.upstream_lock import Lock

MAIN = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DATE = "2021-03-04T05:06:07+00:00"
CONVERT_SUBJECT = "Convert to TensorFlow 2 with tf_upgrade_v2"
OVERLAY_SUBJECT = "Add overlay files"

LR_SUBJECT = "Use a smaller default learning rate"
LR_PATCH = "0001-use-a-smaller-default-learning-rate.patch"
BATCH_SUBJECT = "Raise the default batch size"
BATCH_PATCH = "0002-raise-the-default-batch-size.patch"

MODELING_V1 = '''\
"""A tiny model, written for TensorFlow 1."""
import json

import tensorflow.compat.v1 as tf


class Config(object):
  """Model sizes."""

  def __init__(self, hidden_size=768, num_layers=12):
    self.hidden_size = hidden_size
    self.num_layers = num_layers

  @classmethod
  def from_json_file(cls, path):
    with tf.gfile.GFile(path, "r") as reader:
      text = reader.read()
    return cls(**json.loads(text))


def log_sizes(config):
  tf.logging.info("hidden size %d", config.hidden_size)
  tf.logging.info("layers %d", config.num_layers)


def warmup_steps():
  return 1000


def learning_rate():
  return 1e-4


def decay():
  return 0.01
'''

RUN_V1 = '''\
"""Runs the tiny model."""
import tensorflow.compat.v1 as tf

import modeling

flags = tf.flags
FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 8, "Batch size.")


def main(_):
  config = modeling.Config()
  modeling.log_sizes(config)
  tf.logging.info("batch size %d", FLAGS.batch_size)


if __name__ == "__main__":
  tf.app.run()
'''

OVERLAY_FILE = "hpu_helpers.py"
OVERLAY_TEXT = ('"""Helpers that upstream does not have."""\n\n\ndef device_name():\n'
                '  return "HPU"\n')


def tool_env(cache, **extra):
  """The environment the tool runs in: the shared cache, no upstream override, no user git
  config."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("ALBERT_UPSTREAM", "ALBERT_PATCHES_CACHE", "PYTHONPATH", "GIT_DIR",
                      "GIT_WORK_TREE", "GIT_INDEX_FILE")}
  env.update(ALBERT_PATCHES_CACHE=str(cache), GIT_CONFIG_NOSYSTEM="1",
             GIT_CONFIG_GLOBAL=os.devnull, TF_CPP_MIN_LOG_LEVEL="3")
  env.update({k: str(v) for k, v in extra.items()})
  return env


# git run by the tests sees only the repository it is given, whatever the shell exported.
for _key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
  os.environ.pop(_key, None)

DEVELOPER = ("Test Dev", "dev@example.invalid")


def git(repo, *args, date=DATE):
  """Runs git in `repo` as a test developer (fixed identity and dates); returns stdout.

  The tool's git layer, with the developer's identity and main as the first branch; editors
  are `true`, so a rebase -i or commit --amend takes the todo list or message as it is.
  """
  try:
    return gitlayer.run(args, cwd=repo, date=date, identity=DEVELOPER,
                        config=["-c", "init.defaultBranch=main"],
                        env={"GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true"})
  except gitlayer.GitError as e:
    raise AssertionError(f"git {' '.join(map(str, args))} in {repo} failed:\n{e.stdout}{e.stderr}"
                         ) from None


def commit_files(repo, message, files, date=DATE):
  """Writes {path: text} into `repo` and commits them; returns the new commit's hash."""
  for rel, text in files.items():
    path = Path(repo) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", message, date=date)
  return git(repo, "rev-parse", "HEAD").strip()


# --- the tiny upstream -------------------------------------------------------------------------

@dataclasses.dataclass
class Upstream:
  path: Path
  base: str  # the commit the project pins: main
  first: str  # main's first commit
  elsewhere: str  # child of base: edits modeling.py far from the patches (branch "elsewhere")
  conflict: str  # child of base: edits the very line the learning-rate patch edits

  def tree_of(self, commit):
    return git(self.path, "rev-parse", f"{commit}^{{tree}}").strip()


def make_upstream(path):
  path = Path(path)
  path.mkdir(parents=True)
  git(path, "init", "-q")
  first = commit_files(path, "Initial tiny model", {
      "modeling.py": MODELING_V1, "README.md": "Tiny ALBERT-like upstream.\n"},
      date="2020-01-01T00:00:00+00:00")
  base = commit_files(path, "Add the run script", {"run.py": RUN_V1},
                      date="2020-02-01T00:00:00+00:00")
  git(path, "checkout", "-q", "-b", "elsewhere")
  elsewhere = commit_files(path, "Import os and re in modeling", {
      "modeling.py": MODELING_V1.replace("import json\n", "import json\nimport os\nimport re\n")},
      date="2020-03-01T00:00:00+00:00")
  git(path, "checkout", "-q", "-b", "conflict", base)
  conflict = commit_files(path, "Double the learning rate", {
      "modeling.py": MODELING_V1.replace("return 1e-4", "return 2e-4")},
      date="2020-04-01T00:00:00+00:00")
  git(path, "checkout", "-q", "main")
  return Upstream(path, base, first, elsewhere, conflict)


# --- the project ------------------------------------------------------------------------------

def tensorflow_version():
  """The installed TensorFlow release, as the tool reads it (the lock names it)."""
  version = convert.installed_tensorflow()
  if version is None:
    pytest.skip("TensorFlow is not installed in this Python: tf_upgrade_v2 is needed")
  return version


def tool_command(root, python=PYTHON):
  """The command that runs this checkout's tool on the project at `root`: main(argv, root=...)
  in a fresh Python, as a user's run is, without a copy of tools/ in the project."""
  launch = ("import sys; sys.path.insert(0, sys.argv[1]); from albert_patches.cli import main; "
            "sys.exit(main(sys.argv[3:], root=sys.argv[2]))")
  return [str(python), "-c", launch, str(MAIN / "tools"), str(root)]


class ToolProject:
  """A project directory (tools/, upstream.lock, overlay/, patches/) and its default tree."""

  def __init__(self, root, cache):
    self.root = Path(root)
    self.cache = Path(cache)

  @property
  def tree(self):
    return self.root / "build" / "albert"

  @property
  def lock(self):
    return self.root / "upstream.lock"

  @property
  def patches(self):
    return self.root / "patches"

  def run(self, *args, python=PYTHON, env=None, cache=None, timeout=300):
    """Runs the tool with ARGS on the project, in it; returns the CompletedProcess."""
    full_env = tool_env(cache or self.cache, **(env or {}))
    return subprocess.run([*tool_command(self.root, python), *args],
                          cwd=self.root, env=full_env, capture_output=True, text=True,
                          timeout=timeout)

  def ok(self, *args, **kwargs):
    proc = self.run(*args, **kwargs)
    assert proc.returncode == 0, describe(proc)
    return proc

  def fails(self, *args, **kwargs):
    """Runs the tool, expects a failure with exactly one `error:` line; returns that line."""
    proc = self.run(*args, **kwargs)
    return error_line(proc)

  def git(self, *args, **kwargs):
    return git(self.tree, *args, **kwargs)

  def series(self):
    return [line.strip() for line in (self.patches / "series").read_text().splitlines()
            if line.strip() and not line.startswith("#")]

  def read_lock(self):
    import tomllib
    return tomllib.loads(self.lock.read_text())

  def write_lock(self, **values):
    data = self.read_lock()
    fields = {**data["upstream"], **data["converter"], **values}
    Lock(**fields).write(self.lock)

  def files(self):
    """{relative path: bytes} of the project's inputs (build/ not)."""
    return read_dir(self.root, skip=("build",))

  def mtimes(self):
    return {rel: (self.root / rel).stat().st_mtime_ns for rel in self.files()}

  def tree_state(self, tree=None):
    """Everything about a tree a command could change: files, HEAD, index, record, refs."""
    tree = Path(tree or self.tree)
    record = tree / ".git" / "albert-patches.json"
    return {
        "files": read_dir(tree, skip=(".git",)),
        "head": git(tree, "rev-parse", "HEAD").strip(),
        "status": git(tree, "status", "--porcelain", "--untracked-files=all"),
        "refs": git(tree, "for-each-ref", "--format=%(refname) %(objectname)"),
        "record": record.read_bytes() if record.exists() else None,
    }

  def snapshot(self, tree=None):
    """All a refused command must leave as it was: the tree (bytes and modes of its files, HEAD,
    index, refs, stash, the tool's record) and the project's patches/, overlay/ and lock."""
    tree = Path(tree or self.tree)
    inputs = read_dir(self.root, skip=("build",), modes=True)
    # what lies beside the tree: a refused run leaves no staging directory or lock file there
    beside = sorted(p.name for p in tree.parent.iterdir()) if tree.parent.is_dir() else None
    if not tree.exists():
      return {"tree": None, "inputs": inputs, "beside": beside}
    return {**self.tree_state(tree), "modes": read_dir(tree, skip=(".git",), modes=True),
            "stash": git(tree, "stash", "list", "--format=%H %gs"), "inputs": inputs,
            "beside": beside}

  def subjects(self, tree=None, rev="HEAD"):
    """Commit subjects, oldest first."""
    return git(tree or self.tree, "log", "--reverse", "--format=%s", rev).splitlines()

  def record(self, tree=None):
    import json
    return json.loads((Path(tree or self.tree) / ".git" / "albert-patches.json").read_text())


def read_dir(root, skip=(), modes=False):
  """{relative path: bytes} of the files under `root`, or {path: (bytes, mode)} with `modes`."""
  root = Path(root)
  out = {}
  for path in sorted(root.rglob("*")):
    rel = path.relative_to(root)
    if rel.parts[0] in skip or "__pycache__" in rel.parts or not path.is_file():
      continue
    data = path.read_bytes()
    out[rel.as_posix()] = (data, oct(path.stat().st_mode)) if modes else data
  return out


def describe(proc):
  return (f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}\n"
          f"--- stderr ---\n{proc.stderr[-6000:]}")


def error_line(proc):
  """Asserts the tool failed with exactly one `error:` line on stderr; returns it."""
  assert proc.returncode != 0, describe(proc)
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), describe(proc)
  return lines[0]


def assert_refused(project, *args, expect=(), tree=None, **kwargs):
  """Runs the tool; asserts one `error:` line naming each of `expect`, no traceback, a non-zero
  exit and nothing changed (see ToolProject.snapshot). Returns the error line."""
  before = project.snapshot(tree)
  proc = project.run(*args, **kwargs)
  message = error_line(proc)
  assert "Traceback" not in proc.stderr + proc.stdout, describe(proc)
  for word in expect:
    assert word in message, message
  assert project.snapshot(tree) == before, f"{args} changed something\n{describe(proc)}"
  return message


def make_project(root, upstream, cache):
  """A project with an empty series, pinned to upstream.base, its converted_tree not known yet."""
  root = Path(root)
  (root / "overlay").mkdir(parents=True)
  (root / "overlay" / OVERLAY_FILE).write_text(OVERLAY_TEXT)
  (root / "patches").mkdir()
  (root / "patches" / "series").write_text("# The patch series, in the order it applies.\n")
  Lock(url=str(upstream.path), commit=upstream.base, tree=upstream.tree_of(upstream.base),
       tensorflow=tensorflow_version(), converted_tree="0" * 40).write(root / "upstream.lock")
  return ToolProject(root, cache)


def build_template(root, upstream, cache):
  """The project every unit test starts from, made with the tool's own workflow.

  apply (empty series), learn converted_tree into the lock, commit two edits in the tree,
  regenerate them into patches/, then a fresh apply so the tree is exactly what the series builds.
  """
  project = make_project(root, upstream, cache)
  project.ok("apply")
  converted = project.record()["converted"]
  project.write_lock(converted_tree=git(project.tree, "rev-parse", f"{converted}^{{tree}}").strip())
  edit(project.tree / "modeling.py", "return 1e-4", "return 5e-5")
  git(project.tree, "commit", "-q", "-am", LR_SUBJECT, "-m", "The larger rate diverges on HPUs.")
  edit(project.tree / "run.py", '"batch_size", 8,', '"batch_size", 32,')
  git(project.tree, "commit", "-q", "-am", BATCH_SUBJECT, "-m", "HPUs have memory to spare.")
  project.ok("regenerate")
  assert project.series() == [LR_PATCH, BATCH_PATCH], project.series()
  shutil.rmtree(project.tree)
  project.ok("apply")
  return project


def copy_project(template, root):
  shutil.copytree(template.root, root, symlinks=True)
  return ToolProject(root, template.cache)


def edit(path, old, new, count=1):
  path = Path(path)
  text = path.read_text(encoding="utf-8")
  assert text.count(old) >= 1, f"{old!r} not in {path}"
  path.write_text(text.replace(old, new, count), encoding="utf-8")


def python_without_tensorflow():
  """A Python 3.11+ (for tomllib) outside the venv that really has no TensorFlow, or None."""
  candidates = ["/usr/bin/python3", "/usr/bin/python3.11", shutil.which("python3.11"),
                str(Path.home() / ".pyenv" / "versions" / "3.11.7" / "bin" / "python3.11")]
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
  for candidate in candidates:
    if not candidate or not Path(candidate).exists():
      continue
    probe = subprocess.run(
        [candidate, "-c", "import sys, tomllib, importlib.util; "
         "sys.exit(0 if importlib.util.find_spec('tensorflow') is None else 3)"],
        env=env, capture_output=True)
    if probe.returncode == 0:
      return candidate
  return None


def hunk_header_of(patch_text, index=0):
  return re.findall(r"^@@ .* @@.*$", patch_text, re.MULTILINE)[index]


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tool_cache(tmp_path_factory):
  """The one cache directory (mirror + conversions) every tool run of the session shares."""
  return tmp_path_factory.mktemp("albert-patches-cache")


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
  return make_upstream(tmp_path_factory.mktemp("tiny") / "upstream")


@pytest.fixture(scope="session")
def template(tmp_path_factory, upstream, tool_cache):
  return build_template(tmp_path_factory.mktemp("template") / "project", upstream, tool_cache)


@pytest.fixture
def project(template, tmp_path):
  """A fresh copy of the template project, its tree built, for one test to change."""
  return copy_project(template, tmp_path / "project")
