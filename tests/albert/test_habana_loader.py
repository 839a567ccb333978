"""habana_loader.py: load Habana's module when present, say so once when not.

Habana's software cannot be installed here; the "present" case uses a
stand-in `habana_frameworks.tensorflow` package written to tmp_path that
records the call.
"""
import os
import subprocess
import sys

LOAD_TWICE = """
import tensorflow as tf
from albert.habana_loader import load_habana_module
first = load_habana_module()
second = load_habana_module()
assert first == second
print("DEVICES<" + first + ">")
"""


def _run(tree, code, extra_path=()):
  env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="0",
             PYTHONPATH=os.pathsep.join([str(tree), *map(str, extra_path)]))
  proc = subprocess.run([sys.executable, "-c", code], env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc


def test_without_habana_says_so_once_and_lists_devices(albert_tree):
  proc = _run(albert_tree, LOAD_TWICE)
  assert proc.stderr.count("running without it") == 1
  devices = proc.stdout.split("DEVICES<", 1)[1].split(">", 1)[0]
  assert "CPU: /physical_device:CPU:0" in devices.splitlines()


def write_fake_habana(root, log):
  """A stand-in habana_frameworks.tensorflow that logs calls to `log`."""
  pkg = root / "habana_frameworks" / "tensorflow"
  (pkg / "lib").mkdir(parents=True)
  (root / "habana_frameworks" / "__init__.py").write_text("")
  (pkg / "__init__.py").write_text(
      "from . import sysconfig\n"
      "def load_habana_module():\n"
      f"  open({str(log)!r}, 'a').write('load_habana_module\\n')\n")
  (pkg / "sysconfig.py").write_text(
      "import os\n"
      "def get_lib_dir():\n"
      "  return os.path.join(os.path.dirname(__file__), 'lib')\n")
  (pkg / "lib" / "py_synapse_logger.py").write_text(
      "def _log(line):\n"
      f"  open({str(log)!r}, 'a').write(line + '\\n')\n"
      "def command(c):\n  _log('command ' + c)\n"
      "def start_hw_profile():\n  _log('start_hw_profile')\n"
      "def stop_hw_profile():\n  _log('stop_hw_profile')\n")


def test_with_habana_loads_it(albert_tree, tmp_path):
  log = tmp_path / "calls.log"
  write_fake_habana(tmp_path / "fake", log)
  proc = _run(albert_tree, LOAD_TWICE, [tmp_path / "fake"])
  assert "running without it" not in proc.stderr
  assert log.read_text().splitlines() == ["load_habana_module"] * 2
