# coding=utf-8
"""Layer normalization for ALBERT on TensorFlow 2.

A replacement for `tf.contrib.layers.layer_norm`, which TensorFlow 2 no
longer ships. It computes the same function (mean and variance over the
normalized axes, epsilon 1e-12, or 1e-3 for float16) and creates the same
variables (`<scope>/beta` and `<scope>/gamma`, scope defaulting to
"LayerNorm"), so checkpoints written by upstream ALBERT load unchanged.

When a Habana HPU is present, the fused Habana layer norm op is used instead
of the composite TensorFlow ops. Whether it is present is looked up once per
process.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow as tf

_FUSED_OP_UNSET = object()
_fused_op = _FUSED_OP_UNSET


def _find_fused_op():
  """Returns the Habana fused layer norm op, or None without an HPU."""
  try:
    from habana_frameworks.tensorflow import habana_ops  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  try:
    if not tf.config.list_logical_devices("HPU"):
      return None
  except Exception:  # pylint: disable=broad-except
    return None
  return getattr(habana_ops, "habana_layer_norm", None)


def fused_layer_norm_op():
  """The fused op to use, or None; looked up on the first call only."""
  global _fused_op
  if _fused_op is _FUSED_OP_UNSET:
    _fused_op = _find_fused_op()
  return _fused_op


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

    fused_op = fused_layer_norm_op()
    if (fused_op is not None and center and scale and
        begin_norm_axis == inputs_rank - 1 and
        begin_params_axis in (-1, inputs_rank - 1)):
      outputs = fused_op(inputs, beta, gamma, axes=norm_axes,
                         epsilon=variance_epsilon)
      if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    else:
      mean, variance = tf.nn.moments(inputs, norm_axes, keepdims=True)
      outputs = tf.nn.batch_normalization(
          inputs, mean, variance, offset=beta, scale=gamma,
          variance_epsilon=variance_epsilon)
    outputs.set_shape(inputs_shape)
    if activation_fn is not None:
      outputs = activation_fn(outputs)
    return outputs
