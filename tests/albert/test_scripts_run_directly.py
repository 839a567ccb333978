"""The patched scripts run as `python TREE/SCRIPT`, from any directory, without PYTHONPATH."""
import pytest

from .tiny_albert import hub_importable
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


@pytest.mark.parametrize("script,flags", [
    ("run_squad_v2.py", ["--[no]use_horovod", "--albert_hub_module_handle"]),
    ("run_race.py", ["--[no]use_horovod", "--albert_hub_module_handle"]),
    ("export_checkpoints.py", ["--albert_directory", "--export_path"]),
    ("export_to_tfhub.py", ["--albert_directory", "--export_path"]),
])
def test_helpfull_names_the_scripts_own_flags(albert_tree, script, flags, tmp_path):
  """No tf.contrib or tf.flags left: the script starts and lists its flags."""
  if script == "export_to_tfhub.py" and not hub_importable():
    pytest.skip("tensorflow_hub is not importable")
  text = helpfull(albert_tree, script, tmp_path)
  own = text.split("%s:" % script, 1)
  assert len(own) == 2, "no flags of %s in --helpfull" % script
  for flag in flags:
    assert flag in own[1]
