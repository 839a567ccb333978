"""Session config that asks Grappler's ScopedAllocator to batch allreduces.

The ScopedAllocator optimizer looks for groups of ops of an enabled type
(here "HorovodAllreduce") that run side by side on one device, and gives
their inputs adjacent slices of one buffer, so that a backend able to reduce
one contiguous buffer (Habana's, for instance) does one transfer instead of
many.  It changes where tensors live, never what is computed.

What it does not do, measured with Horovod 0.28.1 and TensorFlow 2.15 on the
CPU: Horovod wraps each allreduce in its own tf.cond, so the optimizer finds
groups of one allreduce, which it leaves alone; the graph that runs, and so
every result, is the same with it on or off.  On this stack it is a no-op kept
for backends whose allreduce ops it can group.

TF_DISABLE_SCOPED_ALLOCATOR=1 (or any other true value below) turns it off;
the scripts then pass no session config, as upstream does.
"""

import os

# The values Habana's TensorFlow bridge accepts for its yes/no variables
# (habana_frameworks.tensorflow.util.str2bool), in any case, so that a value
# means the same to the scripts as to the bridge.
_TRUE = ("1", "t", "true", "y", "yes", "enable", "enabled")
_FALSE = ("0", "f", "false", "n", "no", "disable", "disabled")


class BadEnvVarError(SystemExit):
  """An environment variable holds no yes/no value.

  A SystemExit, so that a script stops with its one-line message instead of a
  traceback.
  """

  def __init__(self, name, value):
    super(BadEnvVarError, self).__init__(
        "error: %s=%r is not a yes/no value; set it to one of %s (true) or "
        "%s (false), or unset it." %
        (name, value, "/".join(_TRUE), "/".join(_FALSE)))


def condition_env_var(name, default=False):
  """Reads a yes/no environment variable as Habana's bridge reads its own.

  Unset gives `default`; the values in _TRUE and _FALSE are accepted in any
  case; anything else, the empty string too, raises BadEnvVarError naming
  the variable.
  """
  value = os.environ.get(name)
  if value is None:
    return default
  if value.lower() in _TRUE:
    return True
  if value.lower() in _FALSE:
    return False
  raise BadEnvVarError(name, value)


def scoped_allocator_session_config():
  """A ConfigProto with ScopedAllocator on for HorovodAllreduce, or None.

  None when TF_DISABLE_SCOPED_ALLOCATOR is true.
  """
  if condition_env_var("TF_DISABLE_SCOPED_ALLOCATOR", default=False):
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
  config = tf.compat.v1.ConfigProto()
  rewrite_options = config.graph_options.rewrite_options
  rewrite_options.scoped_allocator_optimization = (
      rewriter_config_pb2.RewriterConfig.ON)
  del rewrite_options.scoped_allocator_opts.enable_op[:]
  rewrite_options.scoped_allocator_opts.enable_op.append("HorovodAllreduce")
  return config
