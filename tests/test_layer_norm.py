"""custom_layer_norm: same results and variables as tf.contrib.layers.layer_norm.

The reference here is written from the definition of contrib's layer norm
(mean and variance over axes [begin_norm_axis, rank), biased variance,
epsilon 1e-12, or 1e-3 for float16, then gamma * x_hat + beta, params of
shape inputs.shape[begin_params_axis:]), computed in float64 with numpy.
"""
import importlib.util
import sys
import types

import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture()
def cln(albert_tree):
  """A fresh import of the tree's custom_layer_norm.py (fresh lookup cache)."""
  spec = importlib.util.spec_from_file_location(
      "custom_layer_norm_under_test", albert_tree / "custom_layer_norm.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def reference(x, gamma, beta, begin_norm_axis, epsilon):
  x = x.astype(np.float64)
  axes = tuple(range(begin_norm_axis % x.ndim, x.ndim))
  mean = x.mean(axis=axes, keepdims=True)
  var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
  return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def run_graph(build):
  """Builds ops in a fresh graph; initializes variables; returns results."""
  with tf.Graph().as_default() as graph:
    fetches = build()
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
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
      assigns = [tf.compat.v1.get_variable("gamma").assign(gamma),
                 tf.compat.v1.get_variable("beta").assign(beta)]
    with tf.control_dependencies(assigns):
      return tf.identity(out)

  out, _ = run_graph(build)
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
  real_find = cln._find_fused_op

  def counting_find():
    calls.append(1)
    return real_find()

  monkeypatch.setattr(cln, "_find_fused_op", counting_find)
  monkeypatch.setitem(sys.modules, "habana_frameworks", None)
  run_graph(lambda: [cln.custom_layer_norm(tf.ones([2, 4]),
                                           begin_norm_axis=-1)
                     for _ in range(3)])
  assert cln.fused_layer_norm_op() is None
  assert len(calls) == 1


def _fake_habana(monkeypatch, fused_calls):
  """Installs a stand-in habana_frameworks.tensorflow with a fused op."""
  def habana_layer_norm(x, beta, gamma, axes, epsilon):
    fused_calls.append((axes, epsilon))
    return (tf.identity(x * 0 + 7.0, name="fused"), None, None)

  habana_ops = types.SimpleNamespace(habana_layer_norm=habana_layer_norm)
  package = types.ModuleType("habana_frameworks")
  package.__path__ = []
  sub = types.ModuleType("habana_frameworks.tensorflow")
  sub.habana_ops = habana_ops
  package.tensorflow = sub
  monkeypatch.setitem(sys.modules, "habana_frameworks", package)
  monkeypatch.setitem(sys.modules, "habana_frameworks.tensorflow", sub)


def test_habana_installed_but_no_hpu_falls_back(cln, monkeypatch):
  fused_calls = []
  _fake_habana(monkeypatch, fused_calls)
  out, _ = run_graph(lambda: cln.custom_layer_norm(
      tf.constant([[1.0, 3.0]]), begin_norm_axis=-1))
  assert not fused_calls
  np.testing.assert_allclose(out, [[-1.0, 1.0]], atol=1e-5)


def test_hpu_present_uses_fused_op(cln, monkeypatch):
  fused_calls = []
  _fake_habana(monkeypatch, fused_calls)
  real_list = tf.config.list_logical_devices
  monkeypatch.setattr(
      tf.config, "list_logical_devices",
      lambda device_type=None: (["/device:HPU:0"] if device_type == "HPU"
                                else real_list(device_type)))
  out, _ = run_graph(lambda: [cln.custom_layer_norm(
      tf.constant([[1.0, 3.0]]), begin_norm_axis=-1) for _ in range(2)])
  assert fused_calls == [([1], 1e-12), ([1], 1e-12)]
  np.testing.assert_allclose(out[0], [[7.0, 7.0]])
