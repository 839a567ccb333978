"""--use_xla: compile the training graph with XLA's just-in-time compiler.

Importing this module defines the flag; a script applies it by passing its
session config through `xla_session_config` where it builds its RunConfig
(after `precision_session_config`).  With --use_xla the session's graph
optimizer runs XLA's auto-clustering at level ON_1: clusters of ops that XLA
compiles are replaced by _XlaCompile/_XlaRun pairs, compiled on their first
run (the first steps are slow) and fused by XLA.

On a CPU, TensorFlow 2.15 auto-clusters only with --tf_xla_cpu_global_jit in
TF_XLA_FLAGS, and it reads that variable once, the first time anything asks
for its devices or its XLA flags (listing devices does).  The scripts list
devices in main, so the variable is set when the flag is parsed: by
app.run, before main, through the flag's validator.
"""

import os

from absl import flags

CPU_JIT_FLAG = "--tf_xla_cpu_global_jit"

flags.DEFINE_bool(
    "use_xla", False,
    "Compile the graph with XLA's just-in-time compiler (auto-clustering, "
    "level ON_1; on a CPU also --tf_xla_cpu_global_jit in TF_XLA_FLAGS). "
    "The first steps compile and are slow.")

FLAGS = flags.FLAGS


def enable_cpu_jit(environ=None):
  """Adds --tf_xla_cpu_global_jit to TF_XLA_FLAGS in `environ` (os.environ).

  TensorFlow reads the variable once per process, so this must happen before
  it lists its devices; set later, it has no effect.
  """
  environ = os.environ if environ is None else environ
  current = environ.get("TF_XLA_FLAGS", "").split()
  if CPU_JIT_FLAG not in current:
    environ["TF_XLA_FLAGS"] = " ".join(current + [CPU_JIT_FLAG])


@flags.validator("use_xla")
def _enable_cpu_jit_when_parsed(use_xla):
  """Runs when the flags are parsed, early enough for TensorFlow to see it."""
  if use_xla:
    enable_cpu_jit()
  return True


def xla_session_config(config=None):
  """`config` (a ConfigProto or None) with XLA's JIT on if --use_xla.

  Without --use_xla, returns `config` itself.  With it, a copy (or a new
  config like the one the estimator makes) with global_jit_level ON_1.
  """
  if not FLAGS.use_xla:
    return config
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if config is None:
    new_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
  else:
    new_config = tf.compat.v1.ConfigProto()
    new_config.CopyFrom(config)
  new_config.graph_options.optimizer_options.global_jit_level = (
      tf.compat.v1.OptimizerOptions.ON_1)
  enable_cpu_jit()
  tf.compat.v1.logging.info("XLA: just-in-time compilation, level ON_1")
  return new_config
