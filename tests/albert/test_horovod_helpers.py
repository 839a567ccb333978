"""horovod_helpers.py: the lazy `hvd`, rank/size helpers and the one-line errors.

Every case runs in a fresh interpreter on the patched tree, with the real
TensorFlow and Horovod; multi-worker cases use `horovodrun -np 2 --gloo`.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOROVODRUN = Path(sys.executable).with_name("horovodrun")

# Not importing horovod must be visible: sys.modules[...] = None makes any
# `import horovod...` raise ImportError, as on a machine without Horovod.
NO_HOROVOD = "import sys; sys.modules['horovod'] = None\n"


def _env(tree):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("HOROVOD_", "OMPI_", "PMI_", "PMIX_"))}
  env.update(PYTHONPATH=str(tree), OMP_NUM_THREADS="1",
             TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
             TF_CPP_MIN_LOG_LEVEL="3")
  return env


def _python(tree, code, timeout=300):
  return subprocess.run([sys.executable, "-c", code], env=_env(tree),
                        capture_output=True, text=True, timeout=timeout)


def _horovodrun(tree, np, code, timeout=300):
  if not HOROVODRUN.exists():
    pytest.skip("horovodrun not installed")
  proc = subprocess.run(
      [str(HOROVODRUN), "-np", str(np), "--gloo", sys.executable, "-c", code],
      env=_env(tree), capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  # horovodrun prefixes each line with "[rank]<stdout>:".
  return [json.loads(line.split("RESULT ", 1)[1])
          for line in proc.stdout.splitlines() if "RESULT " in line]


REPORT = """
import json
from albert import horovod_helpers as h
print("RESULT " + json.dumps({
    "enabled": h.horovod_enabled(), "size": h.hvd_size(),
    "rank": h.hvd_rank(), "local_size": h.hvd_local_size(),
    "out": h.worker_output_dir("/o")}))
"""


def test_uninitialised_defaults_need_no_horovod(albert_tree):
  proc = _python(albert_tree, NO_HOROVOD + REPORT)
  assert proc.returncode == 0, proc.stderr
  result = json.loads(proc.stdout.split("RESULT ", 1)[1])
  assert result == {"enabled": False, "size": 1, "rank": 0, "local_size": 1,
                    "out": "/o"}


def test_helpers_do_not_import_horovod_until_used(albert_tree):
  proc = _python(albert_tree, REPORT + "import sys\n"
                 "print('IMPORTED', 'horovod' in sys.modules)\n")
  assert proc.returncode == 0, proc.stderr
  assert "IMPORTED False" in proc.stdout


def _one_line_error(proc):
  assert proc.returncode == 1, (proc.stdout, proc.stderr)
  assert "Traceback" not in proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith("error: --use_horovod: ")
  assert "horovodrun -np N" in lines[0]
  return lines[0]


def test_missing_horovod_is_a_one_line_error(albert_tree):
  proc = _python(albert_tree, NO_HOROVOD +
                 "from albert.horovod_helpers import hvd_init\nhvd_init()\n")
  assert "cannot import horovod.tensorflow" in _one_line_error(proc)


def test_hvd_attribute_without_horovod_is_the_same_error(albert_tree):
  proc = _python(albert_tree, NO_HOROVOD +
                 "from albert.horovod_helpers import hvd\nhvd.rank\n")
  assert "pip install horovod" in _one_line_error(proc)


def test_not_launched_by_horovodrun_is_a_one_line_error(albert_tree):
  proc = _python(albert_tree,
                 "from albert.horovod_helpers import hvd_init\nhvd_init()\n")
  assert "not started by horovodrun or mpirun" in _one_line_error(proc)


INIT_AND_REPORT = """
from albert import horovod_helpers as h
h.hvd_init()
assert h.hvd.rank() == h.hvd_rank() and h.hvd.size() == h.hvd_size()
""" + REPORT


def test_two_workers_under_horovodrun(albert_tree):
  results = sorted(_horovodrun(albert_tree, 2, INIT_AND_REPORT),
                   key=lambda r: r["rank"])
  assert results == [
      {"enabled": True, "size": 2, "rank": 0, "local_size": 2, "out": "/o"},
      {"enabled": True, "size": 2, "rank": 1, "local_size": 2, "out": "/o/1"},
  ]


def test_one_worker_under_horovodrun_is_not_enabled(albert_tree):
  results = _horovodrun(albert_tree, 1, INIT_AND_REPORT)
  assert results == [{"enabled": False, "size": 1, "rank": 0,
                      "local_size": 1, "out": "/o"}]


# A stand-in habana_frameworks.tensorflow whose load_habana_module() records,
# per rank, whether Horovod was imported and initialised at that moment.
FAKE_HABANA = """
import os, sys
def load_habana_module():
  module = sys.modules.get("horovod.tensorflow")
  state = ("not imported" if module is None else
           "initialised" if module.is_initialized() else "not initialised")
  with open(os.path.join(os.environ["HABANA_CALLS"],
                         os.environ["HOROVOD_RANK"]), "a") as f:
    f.write("load_habana_module, horovod " + state + "\\n")
"""

# The scripts' order: hvd_init() under --use_horovod, then load_habana_module()
# (whose result they log).
INIT_THEN_LOAD = """
import json, os
from albert.habana_loader import load_habana_module
from albert.horovod_helpers import hvd_init, hvd_rank
hvd_init()
load_habana_module()
with open(os.path.join(os.environ["HABANA_CALLS"], str(hvd_rank()))) as f:
  print("RESULT " + json.dumps({"rank": hvd_rank(),
                                "calls": f.read().splitlines()}))
"""


def test_habana_module_is_loaded_before_horovod(albert_tree, tmp_path):
  """Habana's order: its module (with the multi-node environment and the
  synapse logger it sets up) before Horovod is imported and initialised.

  One process with the variables `horovodrun -np 1` sets, which is enough
  to see the order and quicker than starting a launcher.
  """
  package = tmp_path / "fake" / "habana_frameworks" / "tensorflow"
  package.mkdir(parents=True)
  (package.parent / "__init__.py").write_text("")
  (package / "__init__.py").write_text(FAKE_HABANA)
  calls = tmp_path / "calls"
  calls.mkdir()
  env = _env(albert_tree)
  env.update(PYTHONPATH=os.pathsep.join([str(albert_tree),
                                         str(tmp_path / "fake")]),
             HABANA_CALLS=str(calls), HOROVOD_RANK="0", HOROVOD_SIZE="1",
             HOROVOD_LOCAL_RANK="0", HOROVOD_LOCAL_SIZE="1")
  proc = subprocess.run([sys.executable, "-c", INIT_THEN_LOAD], env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  result, = [json.loads(line.split("RESULT ", 1)[1])
             for line in proc.stdout.splitlines() if "RESULT " in line]
  # Habana's own load_habana_module returns at once when already loaded.
  assert result == {"rank": 0, "calls": [
      "load_habana_module, horovod not imported",
      "load_habana_module, horovod initialised"]}
