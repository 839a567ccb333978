"""custom_layer_norm: same results and variables as tf.contrib.layers.layer_norm.

The reference here is written from the definition of contrib's layer norm
(mean and variance over axes [begin_norm_axis, rank), biased variance,
epsilon 1e-12, or 1e-3 for float16, then gamma * x_hat + beta, params of
shape inputs.shape[begin_params_axis:]), computed in float64 with numpy.
"""
import sys

import numpy as np
import pytest
import tensorflow as tf

from .tree import load_tree_module


@pytest.fixture()
def cln(albert_tree):
  """A fresh import of the tree's custom_layer_norm.py (fresh lookup cache)."""
  return load_tree_module(albert_tree, "custom_layer_norm.py", "custom_layer_norm_under_test")


def reference(x, gamma, beta, begin_norm_axis, epsilon):
  x = x.astype(np.float64)
  axes = tuple(range(begin_norm_axis % x.ndim, x.ndim))
  mean = x.mean(axis=axes, keepdims=True)
  var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
  return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def run_graph(build, with_setup=False):
  """Builds ops in a fresh graph; initializes variables; returns results.

  With `with_setup`, `build` returns (setup ops, fetches): the setup ops run on
  their own after the initializer, so the fetches see their effects. (Fetched
  in one run with an assign, a read of the variable would race the assign.)
  """
  with tf.Graph().as_default() as graph:
    setup, fetches = build() if with_setup else ([], build())
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      if setup:
        sess.run(setup)
      return sess.run(fetches), graph


def test_matches_reference_float32(cln):
  rng = np.random.RandomState(0)
  x = rng.randn(3, 5, 8).astype(np.float32) * 3 + 1
  gamma = rng.randn(8).astype(np.float32)
  beta = rng.randn(8).astype(np.float32)

  def build():
    out = cln.custom_layer_norm(tf.constant(x), begin_norm_axis=-1,
                                begin_params_axis=-1, scope="ln")
    with tf.compat.v1.variable_scope("ln", reuse=True):
      assigns = [tf.compat.v1.get_variable("gamma").assign(gamma).op,
                 tf.compat.v1.get_variable("beta").assign(beta).op]
    return assigns, out

  out, _ = run_graph(build, with_setup=True)
  np.testing.assert_allclose(out, reference(x, gamma, beta, -1, 1e-12),
                             rtol=1e-5, atol=1e-5)


def test_epsilon_1e12_float32_and_1e3_float16(cln):
  # Rows of tiny variance: the result depends strongly on epsilon.
  rng = np.random.RandomState(1)
  x32 = (rng.randn(4, 16) * 1e-3).astype(np.float32)
  x16 = (rng.randn(4, 16) * 3e-2).astype(np.float16)
  (out32, out16), _ = run_graph(lambda: (
      cln.custom_layer_norm(tf.constant(x32), begin_norm_axis=-1),
      cln.custom_layer_norm(tf.constant(x16), begin_norm_axis=-1)))
  ones, zeros = np.ones(16), np.zeros(16)
  np.testing.assert_allclose(out32, reference(x32, ones, zeros, -1, 1e-12),
                             rtol=1e-3, atol=1e-3)
  assert out16.dtype == np.float16
  np.testing.assert_allclose(out16, reference(x16, ones, zeros, -1, 1e-3),
                             rtol=2e-2, atol=2e-2)
  # ... and not the float32 epsilon, which would give unit variance.
  assert abs(np.std(out16.astype(np.float64)) - 1.0) > 0.2


def test_default_axes_normalize_all_but_batch(cln):
  # contrib's defaults: begin_norm_axis=1, params over the last axis.
  rng = np.random.RandomState(2)
  x = rng.randn(2, 3, 4).astype(np.float32)
  out, _ = run_graph(lambda: cln.custom_layer_norm(tf.constant(x)))
  np.testing.assert_allclose(out, reference(x, 1.0, 0.0, 1, 1e-12),
                             rtol=1e-5, atol=1e-5)


def test_variable_names_shapes_and_collections(cln):
  def build():
    x = tf.zeros([2, 6, 10])
    cln.custom_layer_norm(x, begin_norm_axis=-1, begin_params_axis=-1)
    cln.custom_layer_norm(x, begin_norm_axis=-1, begin_params_axis=-1)
    with tf.compat.v1.variable_scope("bert/embeddings"):
      cln.custom_layer_norm(x, begin_norm_axis=-1, begin_params_axis=-1,
                            scope=None)
    cln.custom_layer_norm(x, begin_norm_axis=-1, begin_params_axis=-1,
                          scope="named")
    return tf.constant(0)

  _, graph = run_graph(build)
  with graph.as_default():
    got = {v.op.name: v.shape.as_list()
           for v in tf.compat.v1.global_variables()}
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    model = {v.op.name for v in tf.compat.v1.model_variables()}
  expected = {}
  for scope in ("LayerNorm", "LayerNorm_1", "bert/embeddings/LayerNorm",
                "named"):
    expected[scope + "/beta"] = [10]
    expected[scope + "/gamma"] = [10]
  assert got == expected
  assert trainable == set(expected)
  assert model == set(expected)


def test_initial_values_and_gradients(cln):
  def build():
    x = tf.constant(np.random.RandomState(3).randn(4, 8), dtype=tf.float32)
    out = cln.custom_layer_norm(x, begin_norm_axis=-1, scope="ln")
    loss = tf.reduce_sum(out * tf.range(8, dtype=tf.float32))
    variables = tf.compat.v1.trainable_variables()
    return (variables, tf.gradients(loss, [x] + variables))

  (values, grads), _ = run_graph(build)
  np.testing.assert_array_equal(values[0], np.zeros(8))  # beta
  np.testing.assert_array_equal(values[1], np.ones(8))  # gamma
  for grad in grads:
    assert grad is not None and np.all(np.isfinite(grad))
  np.testing.assert_allclose(grads[1], 4 * np.arange(8))  # d/d beta


def test_no_habana_falls_back_and_looks_up_once(cln, monkeypatch):
  calls = []
  real_find = cln._find_habana_ops

  def counting_find():
    calls.append(1)
    return real_find()

  monkeypatch.setattr(cln, "_find_habana_ops", counting_find)
  monkeypatch.setitem(sys.modules, "habana_frameworks", None)
  run_graph(lambda: [cln.custom_layer_norm(tf.ones([2, 4]),
                                           begin_norm_axis=-1)
                     for _ in range(3)])
  assert cln.fused_layer_norm_ops() is None
  assert len(calls) == 1


# The fused path is tested with Habana's real op library and gradient in
# test_habana_graph.py, and its lookup against Habana's package in
# test_habana_api.py.
