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

TF_DISABLE_SCOPED_ALLOCATOR=1 (or true/yes/on) turns it off; the scripts then
pass no session config, as upstream does.
"""

import os

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def condition_env_var(name, default=False):
  """Reads a yes/no environment variable.

  Unset or empty gives `default`; 1/true/yes/on and 0/false/no/off are
  accepted in any case; anything else raises ValueError naming the variable.
  """
  value = os.environ.get(name, "").strip().lower()
  if not value:
    return default
  if value in _TRUE:
    return True
  if value in _FALSE:
    return False
  raise ValueError(
      "%s=%r: expected one of %s (true) or %s (false)" %
      (name, os.environ[name], "/".join(_TRUE), "/".join(_FALSE)))


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
