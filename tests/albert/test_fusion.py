"""oneDNN's fused kernels in ALBERT's optimized graphs, and the same numbers.

On a CPU where TensorFlow runs oneDNN's kernels (TF_ENABLE_ONEDNN_OPTS=1, which
2.15 turns on by itself only on CPUs with AVX-512), Grappler's remapper fuses
known op patterns into single kernels. The model's dense layers (with
use_einsum=False) are a MatMul and a BiasAdd, which it fuses into _FusedMatMul,
the layer norms are one FusedBatchNormV3 (and its gradient), which it fuses
into _MklLayerNorm in prediction, where it also fuses the attention scores'
BatchMatMulV2, scale and mask. The op types are read from the partition graphs
of a real step (RunOptions.output_partition_graphs), after every rewrite.

In bf16 the layer norms stay composite (custom_layer_norm.py says why). bf16
needs AVX-512 (oneDNN's bfloat16 kernels, and the auto mixed precision
rewrite they follow); without it those tests are skipped.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .tree import cpu_has_avx512

LAYERS = 2

# Builds a tiny ALBERT from the tree, runs one training step (AdamW through
# create_optimizer) or one prediction, and reports the op types of the
# partition graphs, with the fused ops and the dtype of each.
GRAPH = """
import collections, json, sys
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from absl import flags
from albert import modeling, optimization
from albert.precision import with_rewrite, ONEDNN_BF16_REWRITE

precision, mode = sys.argv[1:3]
# As a script parses it: the layer norm's kernel depends on --precision.
flags.FLAGS(["graph", "--precision=" + precision])
layers = %d
config = modeling.AlbertConfig(
    vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=layers,
    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
rng = np.random.RandomState(0)
with tf.Graph().as_default() as graph:
  # Prediction's batch is left open, as the scripts' input functions leave it.
  ids = tf.compat.v1.placeholder_with_default(
      rng.randint(0, 40, [2, 8]).astype(np.int32),
      [2 if mode == "train" else None, 8])
  model = modeling.AlbertModel(config, is_training=mode == "train",
                               input_ids=ids, use_einsum=False)
  output = model.get_sequence_output()
  built = collections.Counter(op.type for op in graph.get_operations())
  if mode == "train":
    loss = tf.reduce_mean(tf.square(output))
    fetch = optimization.create_optimizer(loss, 1e-3, 10, 2, False, "adamw")
  else:
    fetch = output
  session_config = tf.compat.v1.ConfigProto()
  if precision == "bf16":
    session_config = with_rewrite(session_config, ONEDNN_BF16_REWRITE)
  with tf.compat.v1.Session(config=session_config) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    metadata = tf.compat.v1.RunMetadata()
    sess.run(fetch, options=tf.compat.v1.RunOptions(
        output_partition_graphs=True), run_metadata=metadata)
ops = collections.Counter()
for partition in metadata.partition_graphs:
  for node in partition.node:
    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    dtype = node.attr["T"].type if "T" in node.attr else 0
    dtype = tf.dtypes.as_dtype(dtype).name if dtype else ""
    ops["|".join([node.op] + fused) + ":" + dtype] += 1
print("RESULT " + json.dumps({"built": built, "ops": ops}))
""" % LAYERS


def _env(tree):
  env = {k: v for k, v in os.environ.items() if k != "TF_BF16_CONVERSION"}
  env.update(PYTHONPATH=str(tree), TF_ENABLE_ONEDNN_OPTS="1",
             OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
             TF_NUM_INTRAOP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
  return env


def _run(tree, code, *args):
  proc = subprocess.run([sys.executable, "-c", code, *args], env=_env(tree),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  results = [json.loads(line.split("RESULT ", 1)[1])
             for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
  assert len(results) == 1, proc.stdout
  return results[0]


def _count(ops, op_types, fused=None, dtype=None):
  """How many nodes have one of `op_types` (and these fused ops, this dtype)."""
  total = 0
  for key, n in ops.items():
    name, node_dtype = key.rsplit(":", 1)
    op, *node_fused = name.split("|")
    if op in op_types and (fused is None or node_fused == fused) and (
        dtype is None or node_dtype == dtype):
      total += n
  return total


FUSED_MATMUL = ("_MklNativeFusedMatMul", "_MklFusedMatMul", "_FusedMatMul")
BATCH_NORM = ("_MklNativeFusedBatchNormV3", "_MklFusedBatchNormV3",
              "FusedBatchNormV3")
BATCH_NORM_GRAD = ("_MklNativeFusedBatchNormGradV3",
                   "_MklFusedBatchNormGradV3", "FusedBatchNormGradV3")
# Per encoder: the embedding projection, then per layer query, key, value,
# attention output, and the feed-forward pair; the embeddings' layer norm and
# two per layer; one GELU per layer.
DENSE = 1 + 6 * LAYERS
LAYER_NORMS = 1 + 2 * LAYERS


def _check_training(result, dtype):
  built, ops = result["built"], result["ops"]
  # (The pooler's dense layer is built too, but not run.)
  assert built["MatMul"] == DENSE + 1
  # Every dense layer's MatMul and BiasAdd is one kernel ...
  assert _count(ops, FUSED_MATMUL, ["BiasAdd"], dtype) == DENSE, ops
  if dtype != "float32":
    # ... and mixed precision keeps the composite layer norms.
    assert built["FusedBatchNormV3"] == 0
    assert _count(ops, BATCH_NORM) == 0, ops
    return
  # ... and every layer norm one kernel each way.
  assert built["FusedBatchNormV3"] == LAYER_NORMS
  assert _count(ops, BATCH_NORM) == LAYER_NORMS, ops
  assert _count(ops, BATCH_NORM_GRAD) == LAYER_NORMS, ops
  assert _count(ops, ("BiasAdd", "Mean", "SquaredDifference", "Rsqrt",
                      "RsqrtGrad")) == 0, ops


def test_training_step_fuses_dense_layers_and_layer_norms_fp32(albert_tree):
  _check_training(_run(albert_tree, GRAPH, "fp32", "train"), "float32")


def test_prediction_fuses_dense_layers_layer_norms_and_attention_fp32(
    albert_tree):
  ops = _run(albert_tree, GRAPH, "fp32", "predict")["ops"]
  assert _count(ops, FUSED_MATMUL, ["BiasAdd"], "float32") == DENSE, ops
  # Layer norms into _MklLayerNorm; the attention scores' BatchMatMul, scale
  # and mask into one _FusedBatchMatMulV2.
  assert _count(ops, ("_MklLayerNorm",)) == LAYER_NORMS, ops
  assert _count(ops, ("_MklFusedBatchMatMulV2",), ["Mul", "Add"]) == LAYERS
  assert _count(ops, ("BiasAdd", "Mean", "SquaredDifference", "Rsqrt") +
                BATCH_NORM) == 0, ops


@pytest.mark.skipif(not cpu_has_avx512(),
                    reason="bf16 needs AVX-512 (oneDNN's bfloat16 kernels)")
def test_training_step_fuses_dense_layers_not_layer_norms_bf16(albert_tree):
  _check_training(_run(albert_tree, GRAPH, "bf16", "train"), "bfloat16")


# The layer norm through FusedBatchNormV3 (oneDNN on) against float64 numpy:
# values and the gradients of a weighted sum with respect to input, gamma and
# beta, over the last axis (the model's) and over the last two.
LAYER_NORM = """
import json
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from albert import custom_layer_norm as cln
assert cln.use_batch_norm_kernel(tf.float32)
rng = np.random.RandomState(0)
out = []
for begin_norm_axis in (-1, -2):
  x = (rng.randn(3, 5, 8) * 3 + 1).astype(np.float32)
  weights = rng.randn(3, 5, 8).astype(np.float32)
  gamma = rng.randn(*x.shape[begin_norm_axis:]).astype(np.float32)
  beta = rng.randn(*x.shape[begin_norm_axis:]).astype(np.float32)
  with tf.Graph().as_default() as graph:
    xt = tf.constant(x)
    y = cln.custom_layer_norm(xt, begin_norm_axis=begin_norm_axis,
                              begin_params_axis=begin_norm_axis, scope="ln")
    with tf.compat.v1.variable_scope("ln", reuse=True):
      g, b = tf.compat.v1.get_variable("gamma"), tf.compat.v1.get_variable("beta")
    grads = tf.gradients(tf.reduce_sum(y * weights), [xt, g, b])
    types = sorted({op.type for op in graph.get_operations()})
    with tf.compat.v1.Session() as sess:
      sess.run([g.assign(gamma), b.assign(beta)])
      values = sess.run([y] + grads)
  out.append({"x": x.tolist(), "weights": weights.tolist(),
              "gamma": gamma.tolist(), "beta": beta.tolist(),
              "begin_norm_axis": begin_norm_axis, "types": types,
              "values": [v.tolist() for v in values]})
print("RESULT " + json.dumps(out))
"""


def _reference(x, gamma, beta, weights, begin_norm_axis, epsilon=1e-12):
  """Layer norm and the gradients of sum(y * weights), in float64."""
  axes = tuple(range(begin_norm_axis % x.ndim, x.ndim))
  n = np.prod([x.shape[a] for a in axes])
  mean = x.mean(axis=axes, keepdims=True)
  inv = 1 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
  x_hat = (x - mean) * inv
  y = x_hat * gamma + beta
  other = tuple(range(x.ndim - gamma.ndim))
  d_gamma = (weights * x_hat).sum(axis=other)
  d_beta = weights.sum(axis=other)
  d_hat = weights * gamma
  d_x = inv / n * (n * d_hat - d_hat.sum(axis=axes, keepdims=True) -
                   x_hat * (d_hat * x_hat).sum(axis=axes, keepdims=True))
  return [y, d_x, d_gamma, d_beta]


def test_batch_norm_kernel_layer_norm_matches_reference(albert_tree):
  for case in _run(albert_tree, LAYER_NORM):
    assert "FusedBatchNormV3" in case["types"]
    assert "Mean" not in case["types"]
    arrays = {k: np.array(case[k], np.float64)
              for k in ("x", "gamma", "beta", "weights")}
    expected = _reference(arrays["x"], arrays["gamma"], arrays["beta"],
                          arrays["weights"], case["begin_norm_axis"])
    for got, want in zip(case["values"], expected):
      np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-4)


# The same model, with the same variables, through einsum and through the
# fusable MatMul path, with oneDNN's fusions on: the same sequence output.
EINSUM_VS_MATMUL = """
import json
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from albert import modeling
config = modeling.AlbertConfig(
    vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=2,
    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
ids = np.random.RandomState(0).randint(0, 40, [2, 8]).astype(np.int32)
outputs = []
for use_einsum in (True, False):
  with tf.Graph().as_default():
    model = modeling.AlbertModel(config, is_training=False,
                                 input_ids=tf.constant(ids),
                                 use_einsum=use_einsum)
    variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)
    with tf.compat.v1.Session() as sess:
      for i, v in enumerate(variables):
        value = np.random.RandomState(i).randn(*v.shape.as_list()) * 0.2
        v.load(value.astype(np.float32), sess)
      outputs.append(sess.run(model.get_sequence_output()).tolist())
print("RESULT " + json.dumps(outputs))
"""


def test_einsum_and_fused_matmul_paths_agree(albert_tree):
  einsum, matmul = _run(albert_tree, EINSUM_VS_MATMUL)
  einsum, matmul = np.array(einsum), np.array(matmul)
  assert einsum.shape == (2, 8, 16) and np.abs(einsum).max() > 0.1
  np.testing.assert_allclose(matmul, einsum, rtol=1e-5, atol=1e-5)


# The kernel a script's layer norms get, from the --precision it parsed.
LAYER_NORM_OPS = """
import json, sys
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from absl import flags
from albert import custom_layer_norm as cln
from albert import precision  # noqa: F401 (defines --precision)
flags.FLAGS(["script"] + sys.argv[1:])
with tf.Graph().as_default() as graph:
  cln.custom_layer_norm(tf.ones([2, 3, 4]), begin_norm_axis=-1, begin_params_axis=-1)
print("RESULT " + json.dumps(sorted({op.type for op in graph.get_operations()})))
"""


@pytest.mark.parametrize("args,batch_norm", [
    ([], True), (["--precision=bf16"], False), (["--use_bf16_amp"], False)])
def test_mixed_precision_keeps_the_composite_layer_norm(albert_tree, args, batch_norm):
  types = _run(albert_tree, LAYER_NORM_OPS, *args)
  assert ("FusedBatchNormV3" in types) == batch_norm, types
  assert ("Mean" in types) != batch_norm, types
