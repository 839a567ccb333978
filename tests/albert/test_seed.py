"""--seed: the same seed, data and flags train the same model, bitwise.

run_pretraining.py with dropout (input file shuffle, record shuffle, dropout masks, initial
variables all drawn) twice with one seed and once with another; run_classifier.py (its record
shuffle and the dropout of its head) twice with one seed. A run with another seed must differ,
or the comparison proves nothing.
"""
import json

import numpy as np
import pytest

from .horovod_runs import run_env
from .tiny_albert import model_args
from .tree import run_script

STEPS = 4


def final_variables(out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(out / ("model.ckpt-%d" % STEPS)))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def differing(one, two):
  assert sorted(one) == sorted(two)
  return [name for name in one if not np.array_equal(one[name], two[name])]


@pytest.mark.long
def test_pretraining_repeats_with_a_seed(albert_tree, tiny_data, tmp_path):
  config = json.loads(tiny_data["config"].read_text())
  config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
  (tmp_path / "config.json").write_text(json.dumps(config))

  def pretrain(name, seed):
    run_script(albert_tree, "run_pretraining.py",
               "--input_file=%s" % tiny_data["record"], "--output_dir=%s" % (tmp_path / name),
               "--albert_config_file=%s" % (tmp_path / "config.json"), "--do_train",
               "--train_batch_size=8", "--max_seq_length=32", "--max_predictions_per_seq=5",
               "--learning_rate=5e-3", "--num_train_steps=%d" % STEPS,
               "--num_warmup_steps=1", "--save_checkpoints_steps=100", "--seed=%d" % seed,
               env=run_env())
    return final_variables(tmp_path / name)

  first, again, other = pretrain("first", 7), pretrain("again", 7), pretrain("other", 8)
  assert differing(first, again) == []
  assert "bert/embeddings/word_embeddings" in differing(first, other)


def test_fine_tuning_repeats_with_a_seed(albert_tree, tiny_data, tmp_path):
  def classify(name, seed):
    run_script(albert_tree, "run_classifier.py", *model_args(tiny_data, tmp_path / name),
               "--task_name=MRPC", "--data_dir=%s" % (tiny_data["dir"] / "glue"),
               "--do_train", "--max_seq_length=32", "--train_batch_size=4",
               "--train_step=%d" % STEPS, "--warmup_step=1", "--learning_rate=1e-3",
               "--save_checkpoints_steps=100", "--seed=%d" % seed, env=run_env())
    return final_variables(tmp_path / name)

  first, again, other = classify("first", 7), classify("again", 7), classify("other", 8)
  assert differing(first, again) == []
  assert "output_weights" in differing(first, other)
