"""The variables an albert_config.json implies, checked against a checkpoint.

The names and shapes come from this tree's own graph: modeling.AlbertModel with
run_pretraining.py's masked-LM and sentence-order heads, built as pretraining
builds them. A checkpoint that has every one of them, each with its shape, is
one that run_pretraining.py can resume and every fine-tuning script can take
as --init_checkpoint.

Importing run_pretraining defines its flags (--output_dir among them), so a
script with flags of its own runs `checkpoint_problems` in a child process
(download_pretrained.py does).
"""
import tensorflow as tf

from albert import modeling
from albert import run_pretraining


def pretraining_variables(config_file):
  """{name: shape} of every variable of the pretraining graph for CONFIG_FILE."""
  config = modeling.AlbertConfig.from_json_file(config_file)
  v1 = tf.compat.v1
  with tf.Graph().as_default():
    # The shapes of the variables do not depend on the batch or the sequence.
    ids = v1.placeholder(tf.int32, [1, 2])
    model = modeling.AlbertModel(config=config, is_training=False, input_ids=ids,
                                 input_mask=tf.ones_like(ids),
                                 token_type_ids=tf.zeros_like(ids),
                                 use_one_hot_embeddings=False)
    positions = v1.placeholder(tf.int32, [1, 1])
    run_pretraining.get_masked_lm_output(config, model.get_sequence_output(),
                                         model.get_embedding_table(), positions,
                                         positions, v1.placeholder(tf.float32, [1, 1]))
    run_pretraining.get_sentence_order_output(config, model.get_pooled_output(),
                                              v1.placeholder(tf.int32, [1]))
    return {v.op.name: v.shape.as_list() for v in v1.global_variables()}


def checkpoint_problems(config_file, checkpoint):
  """(problems, number of expected variables): each problem a short sentence
  naming a variable the config implies that CHECKPOINT lacks or holds in
  another shape. Variables the checkpoint has beyond these (the global step,
  optimizer slots) are no problem."""
  expected = pretraining_variables(config_file)
  found = dict(tf.train.list_variables(checkpoint))
  problems = []
  for name, shape in sorted(expected.items()):
    if name not in found:
      problems.append("%s %s is missing" % (name, shape))
    elif list(found[name]) != shape:
      problems.append("%s is %s in the checkpoint, %s by the config" % (
          name, list(found[name]), shape))
  return problems, len(expected)
