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
from .tree import make_venv  # noqa: E402  (after the assert rewrite above)


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
  """The gaudi venv, made with `make gaudi-env` if it is not there yet (see make_venv)."""
  make_venv(PROJECT, "gaudi-env", GAUDI_VENV, "tensorflow-cpu and habana-tensorflow", 1200)
  return GaudiEnv(GAUDI_VENV)
