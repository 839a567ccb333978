# coding=utf-8
"""Layer normalization for ALBERT on TensorFlow 2.

A replacement for `tf.contrib.layers.layer_norm`, which TensorFlow 2 no
longer ships. It computes the same function (mean and variance over the
normalized axes, epsilon 1e-12, or 1e-3 for float16) and creates the same
variables (`<scope>/beta` and `<scope>/gamma`, scope defaulting to
"LayerNorm"), so checkpoints written by upstream ALBERT load unchanged.

Where Habana's TensorFlow module is loaded and an HPU exists, float32 layer
norms over the last axis use Habana's fused `HabanaLayerNorm` op instead of the
composite TensorFlow ops; its gradient is the one Habana's module registers.
The lookup happens once per process. `use_fused_ops` hands the op library in
directly, which is how a machine without a Gaudi builds graphs with the real
op (the tests do).

Elsewhere, on a CPU where TensorFlow runs oneDNN's kernels (TF_ENABLE_ONEDNN_OPTS,
on by default on CPUs with AVX-512), the float32 layer norms of a float32 run
(not --precision=bf16 or fp16) are one FusedBatchNormV3 in training mode over
the rows of the input, followed by gamma and beta: one oneDNN kernel forward
and one (FusedBatchNormGradV3) backward instead of a dozen element-wise ops
each way, and the form Grappler's remapper fuses into _MklLayerNorm in graphs
without gradients. It is the same function: the op normalizes each row with
its biased variance and epsilon.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow as tf

_FUSED_OPS_UNSET = object()
_fused_ops = _FUSED_OPS_UNSET


def _find_habana_ops():
  """Habana's op library if its module is loaded and an HPU exists, else None.

  `habana_frameworks.tensorflow.habana_ops` stands for the op library once
  `load_habana_module()` has run (the scripts run it before building a graph);
  before that it has no ops, so it is used only when initialised.
  """
  try:
    from habana_frameworks.tensorflow import habana_ops  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  if not getattr(habana_ops, "is_initialized", False):
    return None
  try:
    if not tf.config.list_physical_devices("HPU"):
      return None
  except Exception:  # pylint: disable=broad-except
    return None
  return habana_ops


def fused_layer_norm_ops():
  """Habana's op library to take the fused op from, or None.

  Looked up on the first call only, unless `use_fused_ops` set it.
  """
  global _fused_ops
  if _fused_ops is _FUSED_OPS_UNSET:
    _fused_ops = _find_habana_ops()
  return _fused_ops


def use_fused_ops(ops):
  """Makes custom_layer_norm take the fused op from `ops` from now on.

  `ops` is Habana's op library: `habana_frameworks.tensorflow.habana_ops` (what
  the lookup finds on a Gaudi), or the module `tf.load_op_library` returns for
  Habana's habana_device.so; None means the composite ops.
  """
  global _fused_ops
  _fused_ops = ops


def habana_layer_norm(ops, inputs, beta, gamma, axis, epsilon):
  """Habana's fused layer norm of float32 `inputs` over the one axis `axis`.

  The op takes its axes and epsilon as tensor-valued attributes (TensorProtos,
  axes as a list), as Habana's own Keras layer passes them; Habana's registered
  gradient reads them back from the op. Of its outputs (y, mean, inverse
  standard deviation) the last two are for that gradient.
  """
  outputs, _, _ = ops.habana_layer_norm(
      x=inputs, beta=beta, gamma=gamma,
      axes=tf.make_tensor_proto([axis]),
      epsilon=tf.make_tensor_proto(epsilon))
  return outputs


def onednn_enabled():
  """Whether TensorFlow runs oneDNN's CPU kernels in this process."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return bool(_pywrap_util_port.IsMklEnabled())


def mixed_precision_requested():
  """Whether the running script was given a --precision other than fp32.

  The mixed precision rewrites put FusedBatchNormV3 in 16 bits where its input
  is, while the composite layer norm stays in float32 (its Mean is on no
  rewrite list): the residual stream would change precision, so mixed
  precision keeps the composite ops. Outside a script (no --precision parsed),
  float32.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  if "precision" not in flags.FLAGS or not flags.FLAGS.is_parsed():
    return False
  from albert.precision import requested_precision  # pylint: disable=g-import-not-at-top
  return requested_precision() != "fp32"


def use_batch_norm_kernel(dtype):
  """Whether a layer norm of `dtype` goes through FusedBatchNormV3.

  Only for float32 runs on oneDNN CPUs: elsewhere the op's kernels are not
  faster than the composite ops, and cuDNN's raises epsilon to at least 1e-5.
  """
  if (dtype != tf.float32 or not onednn_enabled() or
      mixed_precision_requested()):
    return False
  from albert.precision import accelerator  # pylint: disable=g-import-not-at-top
  return accelerator() == "CPU"


def batch_norm_kernel_layer_norm(inputs, beta, gamma, begin_norm_axis,
                                 epsilon):
  """Layer norm of `inputs` over axes [begin_norm_axis, rank) in one kernel.

  The input is seen as a [1, rows, row size, 1] NCHW batch, so FusedBatchNormV3
  in training mode normalizes each row (a channel) over its elements; its
  scale and offset are ones and zeros, and gamma and beta follow, as
  Keras' LayerNormalization does.  The raw op takes `epsilon` as given (the
  Python wrapper raises it to 1.001e-5).
  """
  shape = tf.shape(inputs)
  rows = tf.reduce_prod(shape[:begin_norm_axis])
  row_size = tf.reduce_prod(shape[begin_norm_axis:])
  channels = tf.reshape(rows, [1])
  outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
      x=tf.reshape(inputs, tf.stack([1, rows, row_size, 1])),
      scale=tf.fill(channels, tf.constant(1.0, inputs.dtype)),
      offset=tf.fill(channels, tf.constant(0.0, inputs.dtype)),
      mean=tf.constant([], inputs.dtype),
      variance=tf.constant([], inputs.dtype),
      epsilon=epsilon, data_format="NCHW", is_training=True)
  outputs = tf.reshape(outputs, shape)
  if gamma is not None:
    outputs = outputs * gamma
  if beta is not None:
    outputs = outputs + beta
  return outputs


def custom_layer_norm(inputs,
                      center=True,
                      scale=True,
                      activation_fn=None,
                      reuse=None,
                      trainable=True,
                      begin_norm_axis=1,
                      begin_params_axis=-1,
                      scope=None):
  """Layer normalization with the arguments of tf.contrib.layers.layer_norm.

  Args:
    inputs: A tensor of known rank.
    center: Whether to add the offset `beta`.
    scale: Whether to multiply by `gamma`.
    activation_fn: Activation applied to the result, or None.
    reuse: Whether to reuse the variables of `scope`.
    trainable: Whether the variables are trainable.
    begin_norm_axis: First axis of the normalization; negative counts from the
      end. Moments are taken over axes [begin_norm_axis, rank).
    begin_params_axis: First axis of `beta` and `gamma`; their shape is
      inputs.shape[begin_params_axis:].
    scope: Variable scope; defaults to "LayerNorm".

  Returns:
    A tensor of the shape and dtype of `inputs`.
  """
  with tf.compat.v1.variable_scope(
      scope, default_name="LayerNorm", values=[inputs], reuse=reuse):
    inputs = tf.convert_to_tensor(inputs)
    inputs_shape = inputs.shape
    inputs_rank = inputs_shape.ndims
    if inputs_rank is None:
      raise ValueError("Inputs %s has undefined rank." % inputs.name)
    dtype = inputs.dtype.base_dtype
    if begin_norm_axis < 0:
      begin_norm_axis = inputs_rank + begin_norm_axis
    if begin_params_axis >= inputs_rank or begin_norm_axis >= inputs_rank:
      raise ValueError("begin_params_axis (%d) and begin_norm_axis (%d) "
                       "must be < rank(inputs) (%d)" %
                       (begin_params_axis, begin_norm_axis, inputs_rank))
    params_shape = inputs_shape[begin_params_axis:]
    if not params_shape.is_fully_defined():
      raise ValueError(
          "Inputs %s: shape(inputs)[%s:] is not fully defined: %s" %
          (inputs.name, begin_params_axis, inputs_shape))
    collections = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES,
                   tf.compat.v1.GraphKeys.MODEL_VARIABLES]
    beta = None
    gamma = None
    if center:
      beta = tf.compat.v1.get_variable(
          "beta", shape=params_shape, dtype=dtype,
          initializer=tf.compat.v1.zeros_initializer(),
          collections=collections, trainable=trainable)
    if scale:
      gamma = tf.compat.v1.get_variable(
          "gamma", shape=params_shape, dtype=dtype,
          initializer=tf.compat.v1.ones_initializer(),
          collections=collections, trainable=trainable)
    variance_epsilon = 1e-12 if dtype != tf.float16 else 1e-3
    norm_axes = list(range(begin_norm_axis, inputs_rank))

    fused_ops = fused_layer_norm_ops()
    if (fused_ops is not None and center and scale and dtype == tf.float32 and
        begin_norm_axis == inputs_rank - 1 and
        begin_params_axis in (-1, inputs_rank - 1)):
      outputs = habana_layer_norm(fused_ops, inputs, beta, gamma,
                                  begin_norm_axis, variance_epsilon)
    elif fused_ops is None and use_batch_norm_kernel(dtype):
      outputs = batch_norm_kernel_layer_norm(inputs, beta, gamma,
                                             begin_norm_axis, variance_epsilon)
    else:
      mean, variance = tf.nn.moments(inputs, norm_axes, keepdims=True)
      outputs = tf.nn.batch_normalization(
          inputs, mean, variance, offset=beta, scale=gamma,
          variance_epsilon=variance_epsilon)
    outputs.set_shape(inputs_shape)
    if activation_fn is not None:
      outputs = activation_fn(outputs)
    return outputs
