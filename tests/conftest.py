"""Shared fixtures: the real pinned upstream, and a patched tree built by the tool."""
import concurrent.futures
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# The offline bundle of upstream beside this checkout: the tests' upstream unless ALBERT_UPSTREAM
# names another (the Makefile's default too).
SHARED_BUNDLE = PROJECT.parent / "shared" / "upstream" / "google-research-albert.bundle"
# tools/albert_data.py makes the small data sets that the demo and the tests train on.
sys.path.insert(0, str(PROJECT / "tools"))


# The tiny ALBERT data and pretraining that the script tests share (tiny_data, tiny_pretrained).
pytest_plugins = ["tiny_albert"]


# The fixtures that build something real: a test using one is slow (see `make test-fast`).
SLOW_FIXTURES = {"albert_tree", "gaudi_env", "tool_cache", "upstream_cache", "upstream", "template",
                 "project"}


# The files whose tests take longest, longest first. They are collected first, so that with
# `pytest -n 2 --dist loadfile` (as `make test` runs) one worker starts the learning chain while
# the other takes the rest, instead of the chain running alone at the end.
LONGEST_FIRST = ("test_learning.py", "test_horovod_training.py", "test_more_scripts.py",
                 "test_end_to_end.py")


def pytest_collection_modifyitems(items):
  for item in items:
    if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
      item.add_marker(pytest.mark.slow)
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def upstream_source():
  """Where tests take upstream from: ALBERT_UPSTREAM, else the bundle beside the project."""
  source = os.environ.get("ALBERT_UPSTREAM") or str(SHARED_BUNDLE)
  if "://" not in source and not Path(source).exists():
    pytest.skip(f"no upstream source at {source}; set ALBERT_UPSTREAM")
  return source


@pytest.fixture(scope="session")
def upstream_cache(tmp_path_factory):
  """The tool's cache for every run on the real upstream in the session, so that upstream is
  converted once: ALBERT_PATCHES_CACHE where it is set (`make test` shares it with its `check`),
  else a fresh directory."""
  explicit = os.environ.get("ALBERT_PATCHES_CACHE")
  return Path(explicit).resolve() if explicit else tmp_path_factory.mktemp("upstream-cache")


@pytest.fixture(scope="session")
def albert_tree(tmp_path_factory, upstream_cache):
  """A patched tree, built once per test session with `tools/apply_patches.py apply`.

  ALBERT_TREE=DIR uses an already built tree instead (quicker while developing).
  """
  prebuilt = os.environ.get("ALBERT_TREE")
  if prebuilt:
    return Path(prebuilt).resolve()
  out = tmp_path_factory.mktemp("tree") / "albert"
  env = dict(os.environ, ALBERT_PATCHES_CACHE=str(upstream_cache))
  subprocess.run(
      [sys.executable, str(PROJECT / "tools" / "apply_patches.py"), "apply",
       "--out", str(out), "--upstream", upstream_source()],
      check=True, env=env)
  return out


def cpu_has_avx512():
  """Whether --precision=bf16 can run here: oneDNN's bfloat16 rewrite needs AVX-512."""
  try:
    flags = open("/proc/cpuinfo", encoding="utf-8").read().split()
  except OSError:
    return False
  return "avx512f" in flags


def load_tree_module(tree, filename, name):
  """A fresh import of TREE/FILENAME as module NAME, without putting the tree on sys.path."""
  spec = importlib.util.spec_from_file_location(name, Path(tree) / filename)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def run_script(tree, script, *args, cwd=None, env=None, timeout=900):
  """Runs `python TREE/SCRIPT ARGS` as a user would; fails the test with its output."""
  return _succeeded(subprocess.run(_script_command(tree, script, args), cwd=cwd, env=env,
                                   capture_output=True, text=True, timeout=timeout))


def run_scripts(tree, runs, env, at_once=2, timeout=1800):
  """Runs each (SCRIPT, ARGS) of RUNS as run_script does, AT_ONCE of them at a time, in order."""
  with concurrent.futures.ThreadPoolExecutor(max_workers=at_once) as pool:
    started = [pool.submit(subprocess.run, _script_command(tree, script, args), env=env,
                           capture_output=True, text=True, timeout=timeout)
               for script, args in runs]
  return [_succeeded(future.result()) for future in started]


def _script_command(tree, script, args):
  return [sys.executable, str(Path(tree) / script), *map(str, args)]


def _succeeded(proc):
  """PROC, if it exited 0; else the test fails with its command and output."""
  if proc.returncode != 0:
    pytest.fail(f"{' '.join(proc.args)} exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout[-8000:]}\n"
                f"--- stderr ---\n{proc.stderr[-8000:]}")
  return proc


GAUDI_VENV = PROJECT / "build" / "gaudi-venv"
# What pip prints when the package registry cannot be reached at all.
_UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection",
                "Temporary failure in name resolution", "Network is unreachable",
                "ConnectTimeoutError", "ProxyError")


class GaudiEnv:
  """build/gaudi-venv: tensorflow-cpu 2.15.0 with Habana's bridge unpacked (make gaudi-env)."""

  def __init__(self, root):
    self.python = root / "bin" / "python"
    package, = root.glob("lib/python3*/site-packages/habana_frameworks/tensorflow")
    self.package = package
    self.op_library = package / "tf2_15_0" / "lib" / "habanalabs" / "habana_device.so.2.15.0"

  def run(self, tree, code, *args, timeout=600):
    """Runs `code` in the gaudi venv's Python with TREE on the path; returns the process."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1",
               TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", HABANA_OP_LIBRARY=str(self.op_library),
               HABANA_PACKAGE=str(self.package))
    return subprocess.run([str(self.python), "-c", code, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def gaudi_env():
  """The gaudi venv, made with `make gaudi-env` if it is not there yet.

  Skips only when it cannot be made because the package registry is unreachable; any
  other failure to make it fails the test.
  """
  if not (GAUDI_VENV / ".stamp").exists():
    proc = subprocess.run(["make", "-s", "gaudi-env"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
      if any(marker in output for marker in _UNREACHABLE):
        pytest.skip("build/gaudi-venv could not be made: the package registry is "
                    "unreachable (`make gaudi-env` needs tensorflow-cpu and habana-tensorflow)")
      pytest.fail("make gaudi-env failed:\n" + output[-6000:])
  return GaudiEnv(GAUDI_VENV)
