"""scoped_allocator.py: env-var parsing, the session config, and that turning
ScopedAllocator on changes no result (Horovod 0.28.1 on the CPU, 2 workers)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOROVODRUN = Path(sys.executable).with_name("horovodrun")


def _env(tree, **extra):
  env = {k: v for k, v in os.environ.items()
         if k != "TF_DISABLE_SCOPED_ALLOCATOR"}
  env.update(PYTHONPATH=str(tree), OMP_NUM_THREADS="1",
             TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
             TF_CPP_MIN_LOG_LEVEL="3", **extra)
  return env


def _results(stdout):
  return [json.loads(line.split("RESULT ", 1)[1])
          for line in stdout.splitlines() if "RESULT " in line]


# Habana's str2bool accepts these (habana_frameworks.tensorflow.util; the
# comparison with the real function is in test_habana_api.py).
TRUE = ["1", "t", "true", "y", "yes", "enable", "enabled"]
FALSE = ["0", "f", "false", "n", "no", "disable", "disabled"]
REJECTED = ["", " 1", "on", "off", "maybe", "2", "truth"]

PARSE = """
import json, os, sys
from albert.scoped_allocator import condition_env_var
out = {}
for value in json.loads(sys.argv[1]) + [None]:
  if value is None:
    os.environ.pop("X_FLAG", None)
  else:
    os.environ["X_FLAG"] = value
  try:
    out[repr(value)] = [condition_env_var("X_FLAG", default=False),
                        condition_env_var("X_FLAG", default=True)]
  except SystemExit as e:
    out[repr(value)] = str(e)
print("RESULT " + json.dumps(out))
"""


def test_condition_env_var_accepts_what_habanas_str2bool_accepts(albert_tree):
  values = [v for word in TRUE + FALSE for v in (word, word.upper(),
                                                 word.capitalize())]
  proc = subprocess.run([sys.executable, "-c", PARSE,
                         json.dumps(values + REJECTED)],
                        env=_env(albert_tree), capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr
  out = _results(proc.stdout)[0]
  for value in values:
    expected = [True, True] if value.lower() in TRUE else [False, False]
    assert out[repr(value)] == expected, value
  assert out["None"] == [False, True]   # unset: the default
  for value in REJECTED:
    assert out[repr(value)].startswith(
        "error: X_FLAG=%r is not a yes/no value; set it to one of "
        "1/t/true/y/yes/enable/enabled (true) or "
        "0/f/false/n/no/disable/disabled (false), or unset it." % value)


def test_bad_value_stops_with_one_line_naming_the_variable(albert_tree):
  proc = subprocess.run(
      [sys.executable, "-c", "from albert.scoped_allocator import "
       "scoped_allocator_session_config as c; c()"],
      env=_env(albert_tree, TF_DISABLE_SCOPED_ALLOCATOR="on"),
      capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
      "error: TF_DISABLE_SCOPED_ALLOCATOR='on' is not a yes/no value; set it "
      "to one of 1/t/true/y/yes/enable/enabled (true) or "
      "0/f/false/n/no/disable/disabled (false), or unset it."]


CONFIG = """
import json
from albert.scoped_allocator import scoped_allocator_session_config
try:
  config = scoped_allocator_session_config()
except SystemExit as e:
  print("RESULT " + json.dumps({"error": str(e)}))
  raise SystemExit(0)
if config is None:
  print("RESULT " + json.dumps(None))
else:
  options = config.graph_options.rewrite_options
  print("RESULT " + json.dumps({
      "on": options.scoped_allocator_optimization == 1,
      "enable_op": list(options.scoped_allocator_opts.enable_op)}))
"""


@pytest.mark.parametrize("value, expected", [
    (None, {"on": True, "enable_op": ["HorovodAllreduce"]}),
    ("0", {"on": True, "enable_op": ["HorovodAllreduce"]}),
    ("Disabled", {"on": True, "enable_op": ["HorovodAllreduce"]}),
    ("1", None),
    ("enable", None),
    ("bogus", {"error": "error: TF_DISABLE_SCOPED_ALLOCATOR='bogus' is not a "
                        "yes/no value; set it to one of "
                        "1/t/true/y/yes/enable/enabled (true) or "
                        "0/f/false/n/no/disable/disabled (false), or unset "
                        "it."}),
])
def test_session_config(albert_tree, value, expected):
  extra = {} if value is None else {"TF_DISABLE_SCOPED_ALLOCATOR": value}
  proc = subprocess.run([sys.executable, "-c", CONFIG],
                        env=_env(albert_tree, **extra),
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert _results(proc.stdout) == [expected]


# Trains a small model for 3 steps with hvd.DistributedOptimizer, the session
# configured by scoped_allocator_session_config(); reports a hash of the
# variables and the op types Grappler leaves in the optimised graph.
TRAIN = """
import hashlib, json
import numpy as np
import tensorflow as tf
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.training import saver
from albert.horovod_helpers import hvd, hvd_init, hvd_rank
from albert.scoped_allocator import scoped_allocator_session_config
tf.compat.v1.disable_eager_execution()
hvd_init()
tf.compat.v1.set_random_seed(1 + hvd_rank())
data = np.random.RandomState(hvd_rank()).rand(8, 4).astype("float32")
w1 = tf.compat.v1.get_variable("w1", [4, 3])
w2 = tf.compat.v1.get_variable("w2", [3, 1])
b = tf.compat.v1.get_variable("b", [1],
                              initializer=tf.compat.v1.zeros_initializer())
hidden = tf.nn.relu(tf.matmul(tf.constant(data), w1))
loss = tf.reduce_mean(tf.square(tf.matmul(hidden, w2) + b - 1.0))
train = hvd.DistributedOptimizer(
    tf.compat.v1.train.GradientDescentOptimizer(0.1)).minimize(loss)
config = scoped_allocator_session_config()

graph = tf.compat.v1.get_default_graph()
tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.TRAIN_OP, train)
optimized = tf_optimizer.OptimizeGraph(
    config or tf.compat.v1.ConfigProto(),
    saver.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph))
op_types = sorted({n.op for n in optimized.node} |
                  {n.op for f in optimized.library.function
                   for n in f.node_def})

with tf.compat.v1.Session(config=config) as session:
  session.run(tf.compat.v1.global_variables_initializer())
  session.run(hvd.broadcast_global_variables(0))
  for _ in range(3):
    session.run(train)
  values = session.run([w1, w2, b])
print("RESULT " + json.dumps({
    "rank": hvd_rank(), "configured": config is not None,
    "hash": hashlib.sha256(b"".join(v.tobytes() for v in values)).hexdigest(),
    "op_types": op_types}))
"""


def _train(tree, disable):
  if not HOROVODRUN.exists():
    pytest.skip("horovodrun not installed")
  proc = subprocess.run(
      [str(HOROVODRUN), "-np", "2", "--gloo", sys.executable, "-c", TRAIN],
      env=_env(tree, TF_DISABLE_SCOPED_ALLOCATOR=disable),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
  return sorted(_results(proc.stdout), key=lambda r: r["rank"])


def test_results_identical_with_scoped_allocator_on_and_off(albert_tree):
  on, off = _train(albert_tree, "0"), _train(albert_tree, "1")
  assert [r["configured"] for r in on + off] == [True, True, False, False]
  hashes = {r["hash"] for r in on + off}
  assert len(hashes) == 1, (on, off)
  # Horovod's allreduces are there, and the rewrite added no
  # _ScopedAllocator* op around them: each sits alone in its own tf.cond.
  for r in on + off:
    assert "HorovodAllreduce" in r["op_types"]
    assert not [t for t in r["op_types"] if "ScopedAllocator" in t]
  assert on[0]["op_types"] == off[0]["op_types"]
