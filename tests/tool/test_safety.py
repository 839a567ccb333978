"""tools/apply_patches.py loses no work and leaves nothing broken: work outside the series, two
runs at once, no upstream source, file modes, what a killed run leaves, and the messages that
say where things stand. Real git, real tf_upgrade_v2, the tool run as a subprocess."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from contextlib import contextmanager

import pytest

from .tool_project import (BATCH_PATCH, LR_PATCH, assert_refused,
                           copy_project, describe, edit, error_line, read_dir, tool_command,
                           tool_env)

WAITING = "waiting for another apply to finish with the cache"


def touch_inputs(project):
  """Changes an input, so that apply has to rebuild the tree."""
  edit(project.patches / "series", "# The patch series", "# The patch series (touched)")


def files_and_modes(tree):
  return read_dir(tree, skip=(".git",), modes=True)


@contextmanager
def cache_lock_held(cache):
  """Holds the cache's lock as a running apply would, so that another apply must wait for it."""
  cache.mkdir(parents=True, exist_ok=True)
  with open(cache / "lock", "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


class Running:
  """`tools/apply_patches.py ARGS` running in the background; its stdout lines as they come."""

  def __init__(self, project, *args, cache):
    self.proc = subprocess.Popen(
        [*tool_command(project.root), *args], cwd=project.root,
        env=tool_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    self.lines = []
    self.waiting = threading.Event()
    self.reader = threading.Thread(target=self._read, daemon=True)
    self.reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line)
      if WAITING in line:
        self.waiting.set()
    self.waiting.set()  # the run ended: wake the test up, which then sees it did not wait

  def wait_until_waiting(self):
    assert self.waiting.wait(timeout=300), "the run neither waited for the cache nor ended"
    assert self.proc.poll() is None, f"the run ended instead of waiting:\n{self.finish()}"

  def finish(self):
    stderr = self.proc.stderr.read()
    self.proc.wait(timeout=600)
    self.reader.join()
    self.proc.stderr.close()
    return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "".join(self.lines),
                                       stderr)


# --- work that is not in patches/ ---------------------------------------------------------------

def test_status_names_a_stash_a_branch_and_a_tag(project):
  edit(project.tree / "run.py", "Runs the tiny model.", "Runs it.")
  project.git("stash", "-q", "-m", "half done")
  project.git("branch", "side", "HEAD~1")
  project.git("tag", "tried-this")
  last = project.ok("status").stdout.splitlines()[-1]
  assert last.startswith(f"tree {project.tree}: ahead (")
  for named in ("stash (1 entry, see `git stash list`)", "branch side", "tag tried-this"):
    assert named in last, last
  assert "clean" not in last

  # apply refuses to drop them, even with the inputs unchanged, until told to
  message = project.fails("apply")
  assert "stash (1 entry" in message and "branch side" in message and "tag tried-this" in message
  assert project.git("stash", "list").count("half done") == 1
  proc = project.ok("apply", "--force")
  assert "done:" in proc.stdout
  assert project.git("for-each-ref", "--format=%(refname)").split() == ["refs/heads/patched"]
  assert project.ok("status").stdout.splitlines()[-1].endswith(": clean")


# --- two runs at once ----------------------------------------------------------------------------

def test_two_applies_on_a_cold_cache_both_succeed(project, template, tmp_path):
  """Both wait while the cache is held; then they race for it, and both build the same tree."""
  second = copy_project(template, tmp_path / "second")
  for p in (project, second):
    shutil.rmtree(p.tree)
  cache = tmp_path / "cold-cache"
  with cache_lock_held(cache):
    runs = [Running(p, "apply", cache=cache) for p in (project, second)]
    for run in runs:
      run.wait_until_waiting()
  results = [run.finish() for run in runs]
  for proc in results:
    assert proc.returncode == 0, describe(proc)
    assert proc.stderr == "", describe(proc)
    assert f"{WAITING} {cache} ..." in proc.stdout.splitlines()[0]
  converts = [next(line for line in proc.stdout.splitlines() if line.startswith("convert"))
              for proc in results]
  # one of them made the conversion, the other used what the first made
  assert sorted("from cache" in line for line in converts) == [False, True], converts
  assert project.git("rev-parse", "HEAD").strip() == second.git("rev-parse", "HEAD").strip()
  assert files_and_modes(project.tree) == files_and_modes(second.tree)


# --- without the upstream source -------------------------------------------------------------

@pytest.mark.parametrize("how", ["missing-path", "unreachable-url-in-env"])
def test_warm_cache_builds_without_the_source(project, tmp_path, how):
  touch_inputs(project)
  head = project.git("rev-parse", "HEAD").strip()
  if how == "missing-path":
    proc = project.ok("apply", "--upstream", str(tmp_path / "gone" / "albert.bundle"))
  else:
    proc = project.ok("apply", env={"ALBERT_UPSTREAM": "file:///nonexistent/albert.git"})
  lines = proc.stdout.splitlines()
  assert lines[0].startswith("fetch") and lines[0].endswith("from cache"), proc.stdout
  assert lines[1].startswith("convert") and lines[1].endswith("from cache"), proc.stdout
  assert project.git("rev-parse", "HEAD").strip() == head


# --- the same tree, whichever way it was built ------------------------------------------------

def test_cold_warm_and_aborted_update_give_the_same_bytes_and_modes(project, upstream, tmp_path):
  # run.py is converted by tf_upgrade_v2 and, without the batch patch, touched by no patch
  (project.patches / BATCH_PATCH).unlink()
  edit(project.patches / "series", BATCH_PATCH + "\n", "")
  cache = tmp_path / "fresh-cache"
  shutil.rmtree(project.tree)
  cold = project.ok("apply", cache=cache)
  assert "tf_upgrade_v2 from" in cold.stdout
  built_cold = files_and_modes(project.tree)

  shutil.rmtree(project.tree)
  warm = project.ok("apply", cache=cache)
  assert re.search(r"^convert .* from cache$", warm.stdout, re.MULTILINE), warm.stdout
  built_warm = files_and_modes(project.tree)

  # update converts the other commit in the tree itself (a cold conversion), then stops
  proc = project.run("update", "--to", upstream.conflict, cache=cache)
  assert "tf_upgrade_v2 from" in proc.stdout, describe(proc)
  error_line(proc)
  project.ok("update", "--abort", cache=cache)
  after_abort = files_and_modes(project.tree)

  assert "tf.compat.v1.logging" in built_cold["run.py"][0].decode()  # converted, not patched
  assert built_cold == built_warm
  assert after_abort == built_warm
  umask = os.umask(0)
  os.umask(umask)
  assert {mode for _, mode in built_warm.values()} == {oct(0o100000 | (0o666 & ~umask))}


# --- what a killed run leaves ---------------------------------------------------------------------

def build_dir_names(project):
  return sorted(p.name for p in project.tree.parent.iterdir())


def test_leftover_staging_directories_are_removed(project):
  before = project.snapshot()
  for suffix in ("k1lled", "k2lled"):
    partial = project.tree.parent / f".albert.building-{suffix}" / "albert"
    shutil.copytree(project.tree, partial)
    (partial / "modeling.py").unlink()  # as if killed half way
  proc = project.ok("apply")
  said = proc.stdout.splitlines()
  assert said[0].startswith(f"removed what an interrupted apply left beside {project.tree}")
  assert ".albert.building-k1lled" in said[0] and ".albert.building-k2lled" in said[0]
  assert "nothing to do" in said[1]
  assert build_dir_names(project) == ["albert"]
  assert project.snapshot() == before


def test_tree_hidden_by_an_interrupted_replace_is_recovered(project):
  """A kill between replace's two renames: the old tree hidden, the new one built beside it."""
  before = project.snapshot()
  hidden = project.tree.parent / ".albert.old-h1dden"
  hidden.mkdir()
  os.rename(project.tree, hidden / "albert")
  shutil.copytree(hidden / "albert", project.tree.parent / ".albert.building-n3w" / "albert")
  assert not project.tree.exists()
  proc = project.ok("apply")
  said = proc.stdout.splitlines()
  assert said[0] == (f"recovered {project.tree}: an interrupted apply had moved it to "
                     ".albert.old-h1dden"), proc.stdout
  assert said[1].startswith("removed what an interrupted apply left") and "n3w" in said[1]
  assert "nothing to do" in said[2]
  assert build_dir_names(project) == ["albert"]
  assert project.snapshot() == before


def test_old_tree_half_removed_after_a_replace_is_cleaned(project):
  """A kill while the replaced tree was being removed: the new tree is in place already."""
  before = project.snapshot()
  gone = project.tree.parent / ".albert.old-h4lf" / "replaced"
  shutil.copytree(project.tree, gone)
  shutil.rmtree(gone / ".git")
  proc = project.ok("apply")
  assert "recovered" not in proc.stdout
  assert ".albert.old-h4lf" in proc.stdout.splitlines()[0]
  assert build_dir_names(project) == ["albert"]
  assert project.snapshot() == before


def test_kill_9_during_a_build_then_the_next_run_cleans_up(project, tmp_path):
  touch_inputs(project)
  before = project.snapshot()
  cache = tmp_path / "cache"
  with cache_lock_held(cache):  # keeps the build at a known point: waiting, its staging made
    run = Running(project, "apply", cache=cache)
    run.wait_until_waiting()
    os.killpg(run.proc.pid, signal.SIGKILL)
    proc = run.finish()
  assert proc.returncode == -signal.SIGKILL
  left = [name for name in build_dir_names(project) if name != "albert"]
  assert len(left) == 1 and left[0].startswith(".albert.building-"), left
  after = project.snapshot()
  assert after.pop("beside") == sorted(left + ["albert"])
  before.pop("beside")
  assert after == before

  proc = project.ok("apply", cache=cache)
  assert proc.stdout.splitlines()[0].startswith("removed what an interrupted apply left")
  assert left[0] in proc.stdout.splitlines()[0]
  assert "done:" in proc.stdout
  assert build_dir_names(project) == ["albert"]
  assert project.git("rev-parse", "HEAD").strip() == after["head"]


# --- messages -----------------------------------------------------------------------------------

def test_check_shows_the_patches_before_a_failing_one_as_applied(project):
  edit(project.patches / BATCH_PATCH, '-flags.DEFINE_integer("batch_size", 8,',
       '-flags.DEFINE_integer("batch_size", 9,')
  proc = project.run("check")
  message = error_line(proc)
  assert BATCH_PATCH in message and "run.py" in message
  lines = proc.stdout.splitlines()
  assert lines[0].split() == ["applies", LR_PATCH], proc.stdout
  assert lines[1].split() == ["FAILS", BATCH_PATCH], proc.stdout
  assert "not tried" not in proc.stdout


def test_status_names_an_unfinished_update(project, upstream):
  proc = project.run("update", "--to", upstream.conflict)
  error_line(proc)
  last = project.ok("status").stdout.splitlines()[-1]
  assert last.startswith(f"tree {project.tree}: updating"), last
  assert upstream.conflict[:12] in last and f"stopped at {LR_PATCH}" in last
  assert "`update --continue`" in last and "`update --abort`" in last
  assert "dirty" not in last
  project.ok("update", "--abort")
  assert project.ok("status").stdout.splitlines()[-1].endswith(": clean")


def test_a_record_of_another_tool_version_is_a_clear_error(project):
  path = project.tree / ".git" / "albert-patches.json"
  data = json.loads(path.read_text())
  path.write_text(json.dumps({**data, "schema": 99, "renamed": data.pop("head")}))
  for command in ("apply", "regenerate", "status", "update"):
    args = [command] + (["--to", "0" * 40] if command == "update" else [])
    message = assert_refused(project, *args, expect=["albert-patches.json", "schema 99",
                                                     "apply --force"])
    assert "TypeError" not in message
  proc = project.ok("apply", "--force")
  assert project.record()["schema"] == 1, proc.stdout
  assert "nothing to do" in project.ok("apply").stdout
