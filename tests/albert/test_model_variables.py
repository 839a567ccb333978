"""The patched model has upstream's variables, so released checkpoints load.

Upstream's modeling.py (pinned commit, from the upstream source the suite
uses) is run under TensorFlow 2 through tensorflow.compat.v1, with
tf.contrib.layers.layer_norm supplied by a stand-in written here from
contrib's definition. Each model is built in its own process. The upstream
model writes a checkpoint; the patched model must have exactly the same
variable names and shapes, load that checkpoint through upstream's own
assignment-map code path (modeling.get_assignment_map_from_checkpoint +
init_from_checkpoint), and then compute the same outputs.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from albert_patches import git
from ..conftest import upstream_source

PINNED_COMMIT = os.environ.get("ALBERT_UPSTREAM_COMMIT",
                               "b772393d3dae115b493258ce8e37c17b2cc62100")

CONFIGS = {
    # ALBERT's usual shape: all layers share one group.
    "shared": dict(num_hidden_layers=3, num_hidden_groups=1,
                   inner_group_num=1),
    # Several groups and inner layers: more distinct variable names.
    "grouped": dict(num_hidden_layers=4, num_hidden_groups=2,
                    inner_group_num=2),
}

BUILD = textwrap.dedent(r'''
    import json, sys, types
    import numpy as np
    import tensorflow as tf
    kind, source, config_json, out_dir, use_einsum = sys.argv[1:6]
    use_einsum = use_einsum == "1"

    if kind == "upstream":
      def contrib_layer_norm(inputs, center=True, scale=True,
                             activation_fn=None, reuse=None,
                             variables_collections=None,
                             outputs_collections=None, trainable=True,
                             begin_norm_axis=1, begin_params_axis=-1,
                             scope=None):
        # tf.contrib.layers.layer_norm, as TF 1.15 defines it.
        v1 = tf.compat.v1
        with v1.variable_scope(scope, "LayerNorm", [inputs], reuse=reuse):
          rank = inputs.shape.ndims
          norm_axis = begin_norm_axis % rank
          params_shape = inputs.shape[begin_params_axis:]
          beta = v1.get_variable("beta", params_shape, inputs.dtype,
                                 initializer=v1.zeros_initializer())
          gamma = v1.get_variable("gamma", params_shape, inputs.dtype,
                                  initializer=v1.ones_initializer())
          mean, var = tf.nn.moments(inputs, list(range(norm_axis, rank)),
                                    keepdims=True)
          return tf.nn.batch_normalization(inputs, mean, var, beta, gamma,
                                           1e-12)
      contrib = types.ModuleType("tensorflow.contrib")
      contrib.layers = types.SimpleNamespace(layer_norm=contrib_layer_norm)
      sys.modules["tensorflow.contrib"] = contrib
      import importlib.util
      spec = importlib.util.spec_from_file_location("upstream_modeling",
                                                    source)
      modeling = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(modeling)
    else:
      sys.path.insert(0, source)
      from albert import modeling
      assert modeling.__file__.startswith(source), modeling.__file__

    config = modeling.AlbertConfig.from_dict(json.loads(config_json))
    rng = np.random.RandomState(0)
    ids = rng.randint(0, config.vocab_size, size=(2, 12)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    types_ = np.zeros_like(ids)
    types_[:, 6:] = 1

    with tf.Graph().as_default():
      tf.compat.v1.set_random_seed(1)
      model = modeling.AlbertModel(
          config=config, is_training=False, input_ids=tf.constant(ids),
          input_mask=tf.constant(mask), token_type_ids=tf.constant(types_),
          use_einsum=use_einsum)
      tvars = tf.compat.v1.trainable_variables()
      variables = {v.op.name: v.shape.as_list()
                   for v in tf.compat.v1.global_variables()}
      ckpt = out_dir + "/upstream.ckpt"
      if kind == "patched":
        assignment_map, initialized = (
            modeling.get_assignment_map_from_checkpoint(tvars, ckpt))
        tf.compat.v1.train.init_from_checkpoint(ckpt, assignment_map)
      with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        seq, pooled = sess.run([model.get_sequence_output(),
                                model.get_pooled_output()])
        if kind == "upstream":
          tf.compat.v1.train.Saver().save(sess, ckpt)
          initialized = {}
    np.savez(out_dir + "/" + kind + ".npz", seq=seq, pooled=pooled)
    with open(out_dir + "/" + kind + ".json", "w") as f:
      json.dump({"variables": variables,
                 "initialized": sorted(k for k in initialized
                                       if not k.endswith(":0"))}, f)
''')


@pytest.fixture(scope="module")
def upstream_modeling(tmp_path_factory):
  """upstream's modeling.py at the pinned commit."""
  source = upstream_source()
  clone = tmp_path_factory.mktemp("upstream") / "albert"
  git.run(["clone", "--quiet", "--no-checkout", source, str(clone)])
  text = git.run(["show", PINNED_COMMIT + ":modeling.py"], cwd=clone)
  assert "contrib_layers.layer_norm" in text  # the code path replaced here
  path = clone.parent / "upstream_modeling.py"
  path.write_text(text)
  return path


def build(kind, source, config, out_dir, use_einsum):
  proc = subprocess.run(
      [sys.executable, "-c", BUILD, kind, str(source), json.dumps(config),
       str(out_dir), "1" if use_einsum else "0"],
      capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-6000:]
  with open(out_dir / (kind + ".json")) as f:
    info = json.load(f)
  return info, np.load(out_dir / (kind + ".npz"))


@pytest.mark.parametrize("use_einsum", [True, False])
@pytest.mark.parametrize("layout", sorted(CONFIGS))
def test_same_variables_checkpoint_loads_same_outputs(
    albert_tree, upstream_modeling, tmp_path, layout, use_einsum):
  config = dict(vocab_size=97, embedding_size=8, hidden_size=16,
                num_attention_heads=2, intermediate_size=24,
                max_position_embeddings=32, type_vocab_size=2,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                **CONFIGS[layout])
  upstream, up_out = build("upstream", upstream_modeling, config, tmp_path,
                           use_einsum)
  patched, our_out = build("patched", albert_tree, config, tmp_path,
                           use_einsum)

  assert patched["variables"] == upstream["variables"]
  names = set(upstream["variables"])
  assert any(n.endswith("/LayerNorm/gamma") for n in names)
  assert any(n.endswith("/LayerNorm/beta") for n in names)
  # Every variable of the patched model was loaded from the checkpoint.
  assert set(patched["initialized"]) == names
  np.testing.assert_allclose(our_out["seq"], up_out["seq"], rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(our_out["pooled"], up_out["pooled"], rtol=1e-5,
                             atol=1e-5)
  assert np.abs(up_out["seq"]).sum() > 0
