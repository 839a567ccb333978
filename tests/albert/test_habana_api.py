"""Every Habana API the overlay calls, checked against Habana's real package.

The package is habana-tensorflow 1.14.0.493 (Habana's bridge for TensorFlow
2.15.0), in build/gaudi-venv (`make gaudi-env`). Importing it works without a
Gaudi; `load_habana_module()` does not (it opens the device), nor does anything
that calls it. So each check goes as far as a machine without a Gaudi allows:
calling what runs without the device, and reading the wheel's own Python source
(with `ast`) for the rest. Where a check stops, its test says why.

What the overlay uses:
- habana_loader.py: `habana_frameworks.tensorflow.load_habana_module()`, also
  called by horovod_helpers.hvd_init() before Horovod;
- custom_layer_norm.py: `habana_frameworks.tensorflow.habana_ops` (its
  `is_initialized`, and `habana_layer_norm`, whose gradient Habana registers);
- training_hooks.py (SynapseLoggerHook):
  `habana_frameworks.tensorflow.sysconfig.get_lib_dir()` and the
  `py_synapse_logger` module there: `command(...)`, `start_hw_profile()`,
  `stop_hw_profile()`;
- scoped_allocator.py: the values Habana's `str2bool` accepts.
"""
import json

import pytest

CHECKS = """
import ast, inspect, json, os, sys
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
import habana_frameworks.tensorflow as htf
from habana_frameworks.tensorflow import library_loader, multinode_helpers
from habana_frameworks.tensorflow import synapse_logger_helpers, util
tree = sys.argv[1]
report = {}

def calls_in_order(source):
  # Names of the functions called in `source`, in the order they appear.
  calls = [node for node in ast.walk(ast.parse(source))
           if isinstance(node, ast.Call)]
  calls.sort(key=lambda node: (node.lineno, node.col_offset))
  return [node.func.attr if isinstance(node.func, ast.Attribute)
          else getattr(node.func, "id", None) for node in calls]

def command_strings(source):
  # The first argument of each X.command(...) call: a string constant, or of
  # a formatted one ("name=%s" % v, "name={}".format(v)) its "name=".
  found = []
  for node in ast.walk(ast.parse(source)):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "command" and node.args):
      arg = node.args[0]
      if isinstance(arg, ast.Constant):
        found.append(arg.value)
      elif isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Constant):
        found.append(arg.left.value.split("=")[0] + "=")
      elif (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
            and isinstance(arg.func.value, ast.Constant)):
        found.append(arg.func.value.value.split("=")[0] + "=")
  return found

def module_names(path):
  # Names a module defines at its top level (def, class, assignment).
  names = set()
  for node in ast.parse(open(path).read()).body:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
      names.add(node.name)
    elif isinstance(node, ast.Assign):
      names.update(t.id for t in node.targets if isinstance(t, ast.Name))
  return sorted(names)

# load_habana_module: where the overlay finds it, how it is called (no
# arguments), and what it does in which order.
signature = inspect.signature(htf.load_habana_module)
report["load_habana_module"] = {
    "module": htf.load_habana_module.__module__,
    "required": [p.name for p in signature.parameters.values()
                 if p.default is p.empty],
    "calls": calls_in_order(inspect.getsource(library_loader.load_habana_module)),
}

# The multi-node environment it sets up first, from the variables horovodrun
# sets (run for real: it does not need the device).
os.environ.update(HOROVOD_RANK="1", HOROVOD_SIZE="2", HOROVOD_LOCAL_RANK="1",
                  HOROVOD_LOCAL_SIZE="2")
for name in ("HLS_MODULE_ID", "ID", "TF_RANK_PREFIX", "HABANA_VISIBLE_MODULES"):
  os.environ.pop(name, None)
multinode_helpers._setup_env_for_multinode()
report["multinode"] = {name: os.environ.get(name)
                       for name in ("HLS_MODULE_ID", "ID", "TF_RANK_PREFIX")}

# Synapse logger: where the overlay imports it from, and what it calls on it.
lib_dir = htf.sysconfig.get_lib_dir()
shim = os.path.join(lib_dir, "py_synapse_logger.py")
package_dir = os.path.dirname(htf.__file__)
report["synapse_logger"] = {
    "lib_dir_has_module": os.path.isfile(shim),
    "shim_imports": [node.names[0].name for node in ast.walk(ast.parse(open(shim).read()))
                     if isinstance(node, ast.Import)],
    "names": module_names(os.path.join(package_dir, "py_synapse_logger.py")),
    "habana_commands": command_strings(inspect.getsource(synapse_logger_helpers)),
    "overlay_commands": command_strings(
        open(os.path.join(tree, "training_hooks.py")).read()),
    "overlay_calls": sorted({node.attr for node in ast.walk(ast.parse(
        open(os.path.join(tree, "training_hooks.py")).read()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_logger"}),
}

# habana_ops as the overlay's lookup finds it: uninitialised until
# load_habana_module() hands it the op library; then the overlay builds the
# fused op through it.
from habana_frameworks.tensorflow import habana_ops
from albert import custom_layer_norm
before = custom_layer_norm._find_habana_ops()
initialised_before = habana_ops.is_initialized
library = tf.load_op_library(os.path.join(lib_dir, "habana_device.so." + tf.__version__))
habana_ops.initialize(library)  # what load_habana_module() does with it
custom_layer_norm.use_fused_ops(habana_ops)
with tf.Graph().as_default() as graph:
  custom_layer_norm.custom_layer_norm(tf.zeros([2, 3, 8]), begin_norm_axis=-1,
                                      begin_params_axis=-1)
  custom_layer_norm.custom_layer_norm(tf.zeros([2, 3, 8]), begin_norm_axis=1)
  custom_layer_norm.custom_layer_norm(tf.zeros([2, 8], tf.float16),
                                      begin_norm_axis=-1)
  custom_layer_norm.custom_layer_norm(tf.zeros([2, 8]), begin_norm_axis=-1,
                                      center=False)
report["habana_ops"] = {
    "lookup_before_load": before, "initialised_before_load": initialised_before,
    "same_op": habana_ops.habana_layer_norm is library.habana_layer_norm,
    "fused_ops": sum(op.type == "HabanaLayerNorm" for op in graph.get_operations()),
    "composite": sum(op.name.endswith("/moments/mean") for op in graph.get_operations()),
}

# str2bool against the overlay's reading of TF_DISABLE_SCOPED_ALLOCATOR.
from albert.scoped_allocator import condition_env_var
values = ["1", "t", "true", "y", "yes", "enable", "enabled", "0", "f", "false",
          "n", "no", "disable", "disabled", "TRUE", "Yes", "Enabled", "NO",
          "Disable", "on", "off", "", " 1", "2", "maybe"]
def outcome(function, *args):
  try:
    return function(*args)
  except (ValueError, SystemExit):
    return "error"
differences = []
for value in values:
  os.environ["X_FLAG"] = value
  theirs, ours = outcome(util.str2bool, value), outcome(condition_env_var, "X_FLAG")
  if theirs != ours:
    differences.append([value, theirs, ours])
report["str2bool"] = {"checked": len(values), "differences": differences}
print("RESULT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def report(gaudi_env, albert_tree):
  proc = gaudi_env.run(albert_tree, CHECKS, albert_tree)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
  line, = [out for out in proc.stdout.splitlines() if out.startswith("RESULT ")]
  return json.loads(line.split("RESULT ", 1)[1])


def test_load_habana_module(report):
  """The overlay calls `habana_frameworks.tensorflow.load_habana_module()`
  without arguments, before Horovod (hvd_init) and before building graphs.

  Checked: the name, its module, that no argument is required, and that it
  sets up the multi-node environment and the synapse logger before it loads
  the op library and registers the gradients: the order hvd_init relies on
  (test_horovod_helpers checks hvd_init calls it before Horovod). Not run: it
  opens the Gaudi (without one, Habana's own code aborts the process).
  """
  load = report["load_habana_module"]
  assert load["module"] == "habana_frameworks.tensorflow.library_loader"
  assert load["required"] == []
  calls = load["calls"]
  order = ["_setup_env_for_multinode", "synapse_logger_init",
           "load_op_library", "initialize", "_register_grads"]
  assert all(name in calls for name in order), calls
  assert [calls.index(name) for name in order] == sorted(
      calls.index(name) for name in order)


def test_multinode_environment_from_horovodrun_variables(report):
  """What load_habana_module() sets up first, run for real with the variables
  horovodrun sets for local rank 1 of 2: rank 1 drives Gaudi module 1."""
  assert report["multinode"] == {"HLS_MODULE_ID": "1", "ID": "1",
                                 "TF_RANK_PREFIX": "rank_1_"}


def test_synapse_logger_as_synapse_logger_hook_uses_it(report):
  """SynapseLoggerHook imports `py_synapse_logger` from
  `htf.sysconfig.get_lib_dir()` and calls `command`, `start_hw_profile` and
  `stop_hw_profile` on it, with commands Habana's own helpers send.

  Checked: get_lib_dir() runs and holds py_synapse_logger.py, which forwards
  to habana_frameworks.tensorflow.py_synapse_logger, which defines those
  names; each command the hook sends is one Habana's synapse_logger_helpers
  sends. Not run: importing py_synapse_logger calls load_habana_module() and
  loads its native logger, which need a Gaudi.
  """
  logger = report["synapse_logger"]
  assert logger["lib_dir_has_module"]
  assert "habana_frameworks.tensorflow.py_synapse_logger" in logger[
      "shim_imports"]
  assert logger["overlay_calls"] == ["command", "start_hw_profile",
                                     "stop_hw_profile"]
  assert set(logger["overlay_calls"]) <= set(logger["names"])
  assert sorted(set(logger["overlay_commands"])) == [
      "category_mask=0x3", "disable", "file_name=", "restart"]
  assert set(logger["overlay_commands"]) <= set(logger["habana_commands"])


def test_habana_ops_as_the_layer_norm_lookup_finds_it(report):
  """custom_layer_norm takes the fused op from
  `habana_frameworks.tensorflow.habana_ops` once load_habana_module() has
  initialised it and an HPU exists.

  Checked: before initialisation the lookup gives None (and touches no
  device); initialised with the op library, as load_habana_module() does,
  habana_ops gives the library's habana_layer_norm and the overlay builds
  HabanaLayerNorm through it for a float32 last-axis layer norm, and the
  composite ops for the others (another axis, float16, no beta). Not run: the
  lookup's last step, an HPU in tf.config.list_physical_devices("HPU"):
  with Habana's library loaded and no Gaudi driver, listing devices aborts
  the process inside Habana's library.
  """
  ops = report["habana_ops"]
  assert ops["lookup_before_load"] is None
  assert ops["initialised_before_load"] is False
  assert ops["same_op"]
  assert ops["fused_ops"] == 1
  assert ops["composite"] == 3


def test_scoped_allocator_switch_reads_like_str2bool(report):
  """TF_DISABLE_SCOPED_ALLOCATOR is read as Habana's
  habana_frameworks.tensorflow.util.str2bool reads its variables (run for
  real, on accepted and rejected values alike)."""
  assert report["str2bool"]["checked"] == 25
  assert report["str2bool"]["differences"] == []
