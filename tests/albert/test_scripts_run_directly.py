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


TRAINING_SCRIPTS = ["run_pretraining.py", "run_classifier.py", "run_squad_v1.py",
                    "run_squad_v2.py", "run_race.py"]
SERIES_FLAGS = ["--[no]use_horovod", "--precision", "--seed", "--num_accumulation_steps",
                "--[no]use_xla"]


@pytest.mark.parametrize("script", TRAINING_SCRIPTS)
def test_every_training_script_has_the_series_flags(albert_tree, script, tmp_path):
  text = helpfull(albert_tree, script, tmp_path)
  extra = ["--[no]use_einsum"] if script == "run_pretraining.py" else []
  assert [flag for flag in SERIES_FLAGS + extra if flag not in text] == []


@pytest.mark.parametrize("script,flags", [
    ("run_squad_v2.py", ["--albert_hub_module_handle"]),
    ("run_race.py", ["--albert_hub_module_handle"]),
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
