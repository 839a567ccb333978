"""The tree's tests' fixtures: the tree built by the tool, the gaudi venv with Habana's bridge,
and the tiny ALBERT that the script tests share (tiny_albert.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import PROJECT, upstream_source

# The helpers' asserts report their values as the tests' own do; registered before their import.
pytest.register_assert_rewrite("tests.albert.tiny_albert", "tests.albert.tree")

from .tiny_albert import data, tiny_data, tiny_pretrained  # noqa: E402, F401 (fixtures)


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
