"""ALBERT graphs built with Habana's real fused layer norm and its real gradient.

The scripts run in build/gaudi-venv (`make gaudi-env`: tensorflow-cpu 2.15.0 and
habana-tensorflow 1.14.0.493). Habana's op library is loaded with
`tf.load_op_library`, and the gradient Habana registers for `HabanaLayerNorm` comes
from the wheel's own grads/layer_norm_grad.py, registered exactly as Habana's
`load_habana_module()` registers it (`_register_grad(habana_ops)`). The library is
handed to the overlay with `custom_layer_norm.use_fused_ops`, so from there on the
graph is built by the code a Gaudi runs.

Where these tests stop: graphs are built, never run. Running `HabanaLayerNorm`
needs a Gaudi (the op has HPU kernels only), and so does the overlay's lookup of
the op on a Gaudi (`load_habana_module()` then an HPU in the device list); that
lookup is checked against the wheel in test_habana_api.py.
"""
import json

import pytest

PRELUDE = """
import importlib.util, json, os, sys
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
habana_ops = tf.load_op_library(os.environ["HABANA_OP_LIBRARY"])
spec = importlib.util.spec_from_file_location(
    "habana_layer_norm_grad",
    os.path.join(os.environ["HABANA_PACKAGE"], "grads", "layer_norm_grad.py"))
layer_norm_grad = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layer_norm_grad)
layer_norm_grad._register_grad(habana_ops)
from albert import custom_layer_norm

def layer_norm_ops(graph):
  # (type, input rank, axes, epsilon) of each HabanaLayerNorm{,Grad} op.
  found = []
  for op in graph.get_operations():
    if op.type in ("HabanaLayerNorm", "HabanaLayerNormGrad"):
      found.append([op.type, op.inputs[0].shape.ndims,
                    tf.make_ndarray(op.get_attr("axes")).tolist(),
                    float(tf.make_ndarray(op.get_attr("epsilon")))])
  return found

def composite_layer_norms(graph):
  return sum(1 for op in graph.get_operations()
             if op.name.endswith("/moments/mean"))

def report(**values):
  print("RESULT " + json.dumps(values))
"""

# A tiny ALBERT, built with and without the fused op: its layer norms, variables,
# tf.gradients of a loss, and optimization.create_optimizer's train op.
MODEL = PRELUDE + """
from albert import modeling, optimization
config = modeling.AlbertConfig(
    vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=3,
    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
for fused in (False, True):
  custom_layer_norm.use_fused_ops(habana_ops if fused else None)
  graph = tf.Graph()
  with graph.as_default():
    input_ids = tf.constant(np.random.RandomState(0).randint(0, 40, [2, 8]))
    model = modeling.AlbertModel(config, is_training=True, input_ids=input_ids)
    loss = tf.reduce_mean(tf.square(model.get_pooled_output()))
    variables = tf.compat.v1.trainable_variables()
    gradients = tf.gradients(loss, variables)
    forward_and_gradient = layer_norm_ops(graph)
    train_op = optimization.create_optimizer(loss, 1e-3, 10, 2, False, "adamw")
    report(
        fused=fused,
        variables=sorted([v.op.name, v.shape.as_list()] for v in variables),
        missing_gradients=[v.op.name for v, g in zip(variables, gradients)
                           if g is None],
        gradient_dtypes=sorted({g.dtype.name for g in gradients
                                if g is not None}),
        layer_norm_ops=forward_and_gradient,
        composite_layer_norms=composite_layer_norms(graph),
        train_op=None if train_op is None else train_op.type,
        after_optimizer=layer_norm_ops(graph))
"""

# run_pretraining.py's model_fn in TRAIN mode, with the fused op.
PRETRAINING = PRELUDE + """
from tensorflow.compat.v1 import estimator as tf_estimator
from albert import modeling
import run_pretraining
config = modeling.AlbertConfig(
    vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=2,
    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
custom_layer_norm.use_fused_ops(habana_ops)
model_fn = run_pretraining.model_fn_builder(
    config, init_checkpoint=None, learning_rate=1e-3, num_train_steps=10,
    num_warmup_steps=2, use_tpu=False, use_one_hot_embeddings=False,
    optimizer=sys.argv[1], poly_power=1.0, start_warmup_step=0,
    use_einsum=False)
rng = np.random.RandomState(0)
features = {
    "input_ids": tf.constant(rng.randint(0, 40, [2, 8]), tf.int32),
    "input_mask": tf.ones([2, 8], tf.int32),
    "segment_ids": tf.zeros([2, 8], tf.int32),
    "masked_lm_positions": tf.constant([[1, 3], [2, 5]], tf.int32),
    "masked_lm_ids": tf.constant([[4, 7], [9, 2]], tf.int32),
    "masked_lm_weights": tf.ones([2, 2], tf.float32),
    "next_sentence_labels": tf.constant([[0], [1]], tf.int32),
}
spec = model_fn(features, None, tf_estimator.ModeKeys.TRAIN, {})
graph = tf.compat.v1.get_default_graph()
report(train_op=spec.train_op.type, loss=spec.loss.dtype.name,
       layer_norm_ops=layer_norm_ops(graph),
       composite_layer_norms=composite_layer_norms(graph))
"""


def _results(proc):
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
  return [json.loads(line.split("RESULT ", 1)[1])
          for line in proc.stdout.splitlines() if line.startswith("RESULT ")]


@pytest.fixture(scope="module")
def albert_graphs(gaudi_env, albert_tree):
  plain, fused = _results(gaudi_env.run(albert_tree, MODEL))
  assert not plain["fused"] and fused["fused"]
  return plain, fused


# The embeddings' layer norm, then two per layer (after attention, after the
# feed-forward block): the shared layer's variables, applied num_hidden_layers
# (3) times, each application its own op.
LAYER_NORMS = 1 + 2 * 3


def test_one_habana_layer_norm_op_per_layer_norm(albert_graphs):
  plain, fused = albert_graphs
  assert plain["composite_layer_norms"] == LAYER_NORMS
  assert not plain["layer_norm_ops"]
  forward = [op for op in fused["layer_norm_ops"] if op[0] == "HabanaLayerNorm"]
  assert len(forward) == LAYER_NORMS
  assert fused["composite_layer_norms"] == 0
  # Each over the last axis of its input, with contrib's epsilon, in the
  # attributes Habana's gradient reads back.
  for _, rank, axes, epsilon in forward:
    assert axes == [rank - 1]
    assert epsilon == pytest.approx(1e-12, rel=1e-6)


def test_same_variables_with_and_without_the_fused_op(albert_graphs):
  plain, fused = albert_graphs
  assert fused["variables"] == plain["variables"]
  names = [name for name, _ in fused["variables"]]
  assert "bert/embeddings/LayerNorm/gamma" in names
  assert ("bert/encoder/transformer/group_0/inner_group_0/LayerNorm/beta"
          in names)


def test_gradients_through_habanas_registered_gradient(albert_graphs):
  _, fused = albert_graphs
  assert fused["missing_gradients"] == []
  assert fused["gradient_dtypes"] == ["float32"]
  forward = [op for op in fused["layer_norm_ops"] if op[0] == "HabanaLayerNorm"]
  backward = [op for op in fused["layer_norm_ops"]
              if op[0] == "HabanaLayerNormGrad"]
  # One HabanaLayerNormGrad per layer norm, with the forward op's attributes.
  assert sorted(op[1:] for op in backward) == sorted(op[1:] for op in forward)


def test_create_optimizer_builds_a_train_op(albert_graphs):
  plain, fused = albert_graphs
  assert plain["train_op"] and fused["train_op"]
  grads = [op for op in fused["after_optimizer"]
           if op[0] == "HabanaLayerNormGrad"]
  # create_optimizer takes its own gradients: a second set of gradient ops.
  assert len(grads) == 2 * LAYER_NORMS


def test_run_pretraining_model_fn_builds_a_train_graph(gaudi_env, albert_tree):
  # LAMB, the script's default (the model test above uses AdamW).
  result, = _results(gaudi_env.run(albert_tree, PRETRAINING, "lamb"))
  assert result["train_op"] and result["loss"] == "float32"
  # Two layers: 1 + 2 * 2 in the encoder, and one in the masked-LM head.
  forward = [op for op in result["layer_norm_ops"]
             if op[0] == "HabanaLayerNorm"]
  backward = [op for op in result["layer_norm_ops"]
              if op[0] == "HabanaLayerNormGrad"]
  assert len(forward) == len(backward) == 1 + 2 * 2 + 1
  assert result["composite_layer_norms"] == 0
