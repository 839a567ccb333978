"""Dynamic loss scaling for float16 training, applied by create_optimizer.

float16 has five exponent bits: small gradients underflow to zero.  Loss
scaling multiplies the loss by a factor before the gradients are taken and
divides the gradients by it afterwards; the dynamic variant halves the factor
and skips the update whenever a gradient is inf or NaN, and doubles it after
2000 steps without one.  `precision.precision_session_config` turns it on
for --precision=fp16 on a GPU, the one setting whose graph rewrite computes
in float16; bfloat16 has float32's exponent range and needs none.

The wrapper is TensorFlow's `tf.compat.v1.mixed_precision.
MixedPrecisionLossScaleOptimizer`, the one its graph-rewrite API
(`enable_mixed_precision_graph_rewrite`) puts around a tf.compat.v1
optimizer.  It works with create_optimizer's own steps: its
compute_gradients scales the loss and unscales the gradients (around
Horovod's allreduce, so every worker sees the same gradients and skips the
same steps); tf.clip_by_global_norm turns an inf among them into NaN
everywhere; its apply_gradients runs the AdamW or LAMB update only when all
are finite.  The global step advances on skipped steps too.

This module holds no flags, so optimization.py can import it without giving
a script a --precision flag it does not apply.
"""

import tensorflow as tf

_enabled = False


def enable_loss_scaling():
  """Makes with_loss_scaling wrap the optimizers built from now on."""
  global _enabled
  _enabled = True


def loss_scaling_enabled():
  return _enabled


def with_loss_scaling(optimizer):
  """`optimizer` with dynamic loss scaling when enabled, else `optimizer`."""
  if not _enabled:
    return optimizer
  return tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer(
      optimizer, loss_scale="dynamic")
