"""Shared fixtures: the real pinned upstream, and a patched tree built by the tool."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# tools/albert_data.py makes the small data sets that the demo and the tests train on.
sys.path.insert(0, str(PROJECT / "tools"))
DEFAULT_BUNDLE = PROJECT.parent / "shared" / "upstream" / "google-research-albert.bundle"


def upstream_source():
  """Where tests take upstream from: ALBERT_UPSTREAM, else the bundle beside the project."""
  source = os.environ.get("ALBERT_UPSTREAM") or str(DEFAULT_BUNDLE)
  if "://" not in source and not Path(source).exists():
    pytest.skip(f"no upstream source at {source}; set ALBERT_UPSTREAM")
  return source


@pytest.fixture(scope="session")
def albert_tree(tmp_path_factory):
  """A patched tree, built once per test session with `tools/apply_patches.py apply`.

  ALBERT_TREE=DIR uses an already built tree instead (quicker while developing).
  """
  prebuilt = os.environ.get("ALBERT_TREE")
  if prebuilt:
    return Path(prebuilt).resolve()
  out = tmp_path_factory.mktemp("tree") / "albert"
  cache = tmp_path_factory.mktemp("cache")
  env = dict(os.environ, ALBERT_PATCHES_CACHE=str(cache))
  subprocess.run(
      [sys.executable, str(PROJECT / "tools" / "apply_patches.py"), "apply",
       "--out", str(out), "--upstream", upstream_source()],
      check=True, env=env)
  return out


def run_script(tree, script, *args, cwd=None, env=None, timeout=900):
  """Runs `python TREE/SCRIPT ARGS` as a user would; fails the test with its output."""
  cmd = [sys.executable, str(Path(tree) / script), *map(str, args)]
  proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=timeout)
  if proc.returncode != 0:
    pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout[-8000:]}\n"
                f"--- stderr ---\n{proc.stderr[-8000:]}")
  return proc
