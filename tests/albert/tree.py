"""The built tree as the tests use it: its scripts run as `python TREE/SCRIPT`, its modules
imported from their files, and what the CPU allows."""
import concurrent.futures
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


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


def helpfull(tree, script, cwd):
  """The script's `--helpfull` text; absl prints it and exits 1 by design."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, str(tree / script), "--helpfull"], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode in (0, 1), proc.stderr[-4000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
  return proc.stdout


# What pip prints when the package registry cannot be reached at all.
_UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection",
                "Temporary failure in name resolution", "Network is unreachable",
                "ConnectTimeoutError", "ProxyError")


def make_venv(project, target, venv, needs, timeout):
  """Runs `make TARGET` in PROJECT unless VENV/.stamp exists (the venv is made).

  Skips the test only when the venv cannot be made because the package registry is
  unreachable (NEEDS says what from it); any other failure fails the test.
  """
  if (venv / ".stamp").exists():
    return
  proc = subprocess.run(["make", "-s", target], cwd=project, capture_output=True, text=True,
                        timeout=timeout)
  output = proc.stdout + proc.stderr
  if proc.returncode != 0:
    if any(marker in output for marker in _UNREACHABLE):
      pytest.skip(f"{venv.relative_to(project)} could not be made: the package registry is "
                  f"unreachable (`make {target}` needs {needs})")
    pytest.fail(f"make {target} failed:\n" + output[-6000:])
