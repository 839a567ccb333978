"""The patched scripts run as `python TREE/SCRIPT`, from any directory, without PYTHONPATH."""
import pytest

from .tree import helpfull

SCRIPTS = ["run_pretraining.py", "run_classifier.py", "run_squad_v1.py",
           "create_pretraining_data.py"]


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
