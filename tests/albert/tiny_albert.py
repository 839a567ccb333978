"""The tiny ALBERT the script and Horovod tests share, built once per session.

`tiny_data`: a generated corpus, its sentencepiece model, an ALBERT config, pretraining
records written by the tree's create_pretraining_data.py, MRPC in GLUE's layout and SQuAD v1
files (`data`: their directory). `tiny_pretrained`: run_pretraining.py on those records for 20
steps, then resumed to 80, as a user carries a run on. Every script runs as
`python TREE/SCRIPT ...` from a directory outside the tree, without PYTHONPATH.
"""
import functools
import os
import re
import subprocess
import sys

import pytest

import albert_data
from .tree import run_script

SEQ = 32
MAX_PRED = 5
STEPS_1 = 20
STEPS_2 = 80


def script_env():
  env = dict(os.environ)
  env.pop("PYTHONPATH", None)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  return env


@functools.lru_cache(maxsize=None)
def hub_importable():
  """Whether tensorflow_hub imports where the scripts run (export_to_tfhub.py needs it)."""
  proc = subprocess.run([sys.executable, "-c", "import tensorflow_hub"],
                        env=script_env(), capture_output=True, text=True,
                        timeout=300)
  return proc.returncode == 0


def run(tree, script, *args, cwd, env=None):
  return run_script(tree, script, *args, cwd=cwd, env=env or script_env())


def read_results(path):
  """Parses `key = value` lines (the scripts' eval_results.txt) in order."""
  results = []
  for line in path.read_text().splitlines():
    match = re.match(r"^(\w+) = (-?[\d.eE+-]+|nan|inf)$", line.strip())
    if match:
      results.append((match.group(1), float(match.group(2))))
  return results


def last(results, key):
  values = [v for k, v in results if k == key]
  assert values, (key, results)
  return values[-1]


def assert_initialized_from_checkpoint(log):
  """The script's log says it took ALBERT's weights from --init_checkpoint."""
  inits = re.findall(r"name = (bert/\S+):0, shape = .*\*INIT_FROM_CKPT\*", log)
  assert any("LayerNorm/gamma" in n for n in inits), log[-3000:]
  assert any("word_embeddings" in n for n in inits), log[-3000:]


def model_args(data, output_dir):
  """The flags every fine-tuning script takes for the tiny model and its vocabulary."""
  return ["--albert_config_file=%s" % data["config"], "--vocab_file=%s" % data["spm_vocab"],
          "--spm_model_file=%s" % data["spm_model"], "--output_dir=%s" % output_dir]


def squad_args(script_dir, train_file, dev_file, *extra):
  """run_squad_v1.py's and run_squad_v2.py's data flags for the tiny SQuAD files."""
  return ["--train_file=%s" % train_file, "--predict_file=%s" % dev_file,
          "--train_feature_file=%s" % (script_dir / "train.tfrecord"),
          "--predict_feature_file=%s" % (script_dir / "dev.tfrecord"),
          "--predict_feature_left_file=%s" % (script_dir / "dev_left"),
          "--do_lower_case", "--max_seq_length=64", "--doc_stride=32",
          "--max_query_length=16", "--max_answer_length=8",
          "--train_batch_size=8", "--predict_batch_size=8",
          "--save_checkpoints_steps=1000", "--iterations_per_loop=10", *extra]


@pytest.fixture(scope="session")
def tiny_data(albert_tree, tmp_path_factory):
  d = tmp_path_factory.mktemp("tiny")
  corpus = albert_data.write_corpus(d / "corpus.txt")
  spm_model, spm_vocab = albert_data.train_sentencepiece(corpus, d / "sp")
  vocab_size = len(spm_vocab.read_text(encoding="utf-8").splitlines())
  config = albert_data.write_albert_config(d / "config.json", vocab_size=vocab_size,
                                           max_position_embeddings=64)
  record = d / "pre.tfrecord"
  proc = run(albert_tree, "create_pretraining_data.py",
             "--input_file=%s" % corpus, "--output_file=%s" % record,
             "--vocab_file=%s" % spm_vocab, "--spm_model_file=%s" % spm_model,
             "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED,
             "--masked_lm_prob=0.15", "--dupe_factor=3", "--random_seed=12345", cwd=d)
  written = re.search(r"Wrote (\d+) total instances", proc.stderr)
  assert written and int(written.group(1)) > 100, proc.stderr[-3000:]
  albert_data.write_mrpc(d / "glue")
  # 7 paragraphs of 3 questions: 21 examples, split 11 + 10 between two ranks.
  albert_data.write_squad_v1(d / "train.json", num_paragraphs=7)
  albert_data.write_squad_v1(d / "dev.json", num_paragraphs=2, seed=5, prefix="d")
  return dict(dir=d, spm_model=spm_model, spm_vocab=spm_vocab, config=config, record=record,
              vocab_size=vocab_size)


@pytest.fixture(scope="session")
def data(tiny_data):
  """The directory of the session's tiny ALBERT, as the Horovod tests pass it to the scripts:
  sp.model, config.json, pre.tfrecord, glue/MRPC, SQuAD's train.json and dev.json."""
  return tiny_data["dir"]


def pretrain(tree, data, output_dir, steps, cwd, *extra, env=None):
  return run(tree, "run_pretraining.py",
             "--input_file=%s" % data["record"], "--output_dir=%s" % output_dir,
             "--albert_config_file=%s" % data["config"], "--do_train", "--do_eval",
             "--train_batch_size=16", "--eval_batch_size=16",
             "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED,
             "--optimizer=lamb", "--learning_rate=5e-3",
             "--num_train_steps=%d" % steps, "--num_warmup_steps=5",
             "--save_checkpoints_steps=20", "--iterations_per_loop=10",
             "--max_eval_steps=8", *extra, cwd=cwd, env=env)


@pytest.fixture(scope="session")
def tiny_pretrained(albert_tree, tiny_data, tmp_path_factory):
  work = tmp_path_factory.mktemp("tiny-pretraining")
  out = work / "pretrain"
  first = pretrain(albert_tree, tiny_data, out, STEPS_1, work)
  results_1 = read_results(out / "eval_results.txt")
  ckpt_state_1 = (out / "checkpoint").read_text()
  second = pretrain(albert_tree, tiny_data, out, STEPS_2, work)
  results_2 = read_results(out / "eval_results.txt")
  return dict(out=out, first=first, second=second, results_1=results_1,
              results_2=results_2, ckpt_state_1=ckpt_state_1,
              checkpoint=out / ("model.ckpt-%d" % STEPS_2))


def write_pretraining_records(path, ids, seq_length=16, predictions=3):
  """One record per id: input_ids start with the id, then 5, 6, 5, 7, ...

  Tokens repeat within a record, so an embedding gradient has duplicate
  rows.  Every position is real and every prediction weighs 1, so each
  example weighs the same in the masked-LM loss.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  def ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  body = [5, 6, 5, 7, 4, 3, 8, 5, 9, 4, 3, 6, 5, 7, 8, 9]
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in ids:
      features = {
          "input_ids": ints([i] + body[:seq_length - 1]),
          "input_mask": ints([1] * seq_length),
          "segment_ids": ints([0] * (seq_length // 2) +
                              [1] * (seq_length - seq_length // 2)),
          "masked_lm_positions": ints([1, 4, 8][:predictions]),
          "masked_lm_ids": ints([10, 11, 10][:predictions]),
          "masked_lm_weights": tf.train.Feature(
              float_list=tf.train.FloatList(value=[1.0] * predictions)),
          "next_sentence_labels": ints([1]),
      }
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=features)).SerializeToString())


def checkpoint_differences(one, two, relative, absolute):
  """{variable: how many times over the tolerance} for the float variables of
  two checkpoints that differ by more than `relative` times the variable's
  largest magnitude plus `absolute`; asserts that both have the same variables
  and the same integer ones (the global step)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  a, b = tf.train.load_checkpoint(str(one)), tf.train.load_checkpoint(str(two))
  names = sorted(a.get_variable_to_shape_map())
  assert names == sorted(b.get_variable_to_shape_map())
  off = {}
  for name in names:
    x, y = a.get_tensor(name), b.get_tensor(name)
    if x.dtype.kind != "f":
      assert np.array_equal(x, y), (name, x, y)
      continue
    tolerance = relative * np.max(np.abs(x)) + absolute
    if np.max(np.abs(x - y)) > tolerance:
      off[name] = float(np.max(np.abs(x - y)) / tolerance)
  return off
