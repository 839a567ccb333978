"""The patched scripts run as `python TREE/SCRIPT`, from any directory, without PYTHONPATH."""
import os
import subprocess
import sys

import pytest

SCRIPTS = ["run_pretraining.py", "run_classifier.py", "run_squad_v1.py",
           "create_pretraining_data.py"]


def helpfull(tree, script, cwd):
  """The script's `--helpfull` text; absl prints it and exits 1 by design."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, str(tree / script), "--helpfull"], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode in (0, 1), proc.stderr[-4000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
  return proc.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_helpfull_lists_the_scripts_flags(albert_tree, script, tmp_path):
  text = helpfull(albert_tree, script, tmp_path)
  own = text.split(f"{script}:", 1)
  assert len(own) == 2, f"no flags of {script} in --helpfull"
  assert "  --" in own[1].split("\n\n", 1)[0]


@pytest.mark.parametrize("script,flag", [
    ("run_pretraining.py", "--[no]use_einsum"),
    ("run_pretraining.py", "--[no]use_horovod"),
    ("run_classifier.py", "--[no]use_horovod"),
    ("run_squad_v1.py", "--[no]use_horovod"),
])
def test_the_series_adds_its_flags(albert_tree, script, flag, tmp_path):
  assert flag in helpfull(albert_tree, script, tmp_path)
