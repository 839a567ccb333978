"""Streaming STS-B metrics for TensorFlow 2, in place of tf.contrib.metrics.

streaming_concat and streaming_pearson_correlation keep contrib's (value, update_op) interface,
so the STS-B metric_fn in classifier_utils.py calls them as it called contrib's.
"""
import tensorflow as tf


def streaming_concat(values, name="streaming_concat"):
  """Concatenates `values` of all batches along axis 0, as a metric.

  Stands in for tf.contrib.metrics.streaming_concat, which TensorFlow 2 lacks.

  Args:
    values: Tensor of rank >= 1 whose dimensions after the first are known.
    name: Variable scope name.

  Returns:
    (value, update_op): all values seen so far, and the op that appends this
    batch's.
  """
  with tf.compat.v1.variable_scope(None, default_name=name):
    values = tf.convert_to_tensor(values)
    inner_shape = values.shape[1:].as_list()
    array = tf.compat.v1.Variable(
        tf.zeros([0] + inner_shape, dtype=values.dtype),
        trainable=False,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                     tf.compat.v1.GraphKeys.METRIC_VARIABLES],
        shape=tf.TensorShape([None] + inner_shape),
        name="array")
    update_op = array.assign(tf.concat([array, values], axis=0))
    return array.read_value(), update_op


def streaming_pearson_correlation(predictions, labels, weights=None,
                                   name="pearson_correlation"):
  """Weighted Pearson correlation of all batches, as a metric.

  Stands in for tf.contrib.metrics.streaming_pearson_correlation, which
  TensorFlow 2 lacks. Like it, it keeps the running weighted count, means and
  co-moments of predictions and labels, merging each batch's centred moments
  into them (numerically stable), and returns
  comoment(x, y) / sqrt(comoment(x, x) * comoment(y, y)).

  Args:
    predictions: Tensor of predictions.
    labels: Tensor of labels, of the shape of `predictions`.
    weights: Optional weights, broadcastable to `predictions`.
    name: Variable scope name.

  Returns:
    (value, update_op).
  """
  with tf.compat.v1.variable_scope(None, default_name=name):
    x = tf.reshape(tf.cast(predictions, tf.float32), [-1])
    y = tf.reshape(tf.cast(labels, tf.float32), [-1])
    if weights is None:
      w = tf.ones_like(x)
    else:
      w = tf.reshape(
          tf.broadcast_to(tf.cast(weights, tf.float32),
                          tf.shape(tf.cast(predictions, tf.float32))), [-1])

    def local_variable(var_name):
      return tf.compat.v1.Variable(
          0.0, trainable=False, name=var_name,
          collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                       tf.compat.v1.GraphKeys.METRIC_VARIABLES])
    count, mean_x, mean_y, c_xx, c_yy, c_xy = [
        local_variable(n)
        for n in ("count", "mean_x", "mean_y", "comoment_xx", "comoment_yy",
                  "comoment_xy")]

    def correlation(cxx, cyy, cxy):
      return tf.math.divide_no_nan(cxy, tf.sqrt(cxx * cyy))

    batch_count = tf.reduce_sum(w)
    batch_mean_x = tf.math.divide_no_nan(tf.reduce_sum(w * x), batch_count)
    batch_mean_y = tf.math.divide_no_nan(tf.reduce_sum(w * y), batch_count)
    dx = x - batch_mean_x
    dy = y - batch_mean_y
    new_count = count + batch_count
    delta_x = batch_mean_x - mean_x
    delta_y = batch_mean_y - mean_y
    share = tf.math.divide_no_nan(batch_count, new_count)
    cross = count * share  # count * batch_count / new_count
    new_values = [
        new_count,
        mean_x + delta_x * share,
        mean_y + delta_y * share,
        c_xx + tf.reduce_sum(w * dx * dx) + delta_x * delta_x * cross,
        c_yy + tf.reduce_sum(w * dy * dy) + delta_y * delta_y * cross,
        c_xy + tf.reduce_sum(w * dx * dy) + delta_x * delta_y * cross,
    ]
    variables = [count, mean_x, mean_y, c_xx, c_yy, c_xy]
    with tf.control_dependencies(new_values):
      assigns = [v.assign(n) for v, n in zip(variables, new_values)]
    with tf.control_dependencies(assigns):
      update_op = tf.identity(correlation(*new_values[3:]))
    value = correlation(c_xx, c_yy, c_xy)
    return value, update_op
