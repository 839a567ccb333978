"""The three scripts trained by `horovodrun -np 2 --gloo` on the CPU.

Tiny generated data and model (tests/albert_data.py).  For each script:
both ranks exit 0; their final checkpoints are bitwise identical (broadcast
of rank 0's initial variables, then averaged gradients); per-rank output
directories, step counts and learning rate are as the seed says; evaluation
and prediction happen on rank 0 only; PerfLoggingHook's JSON line matches
the steps and batch size.  A control run without the broadcast hook ends
with different variables, so the comparison can fail.  One more run trains
in a single process with Horovod made unimportable.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import albert_data
from conftest import run_script

HOROVODRUN = Path(sys.executable).with_name("horovodrun")
LEARNING_RATE = 0.000123

pytestmark = pytest.mark.skipif(not HOROVODRUN.exists(),
                                reason="horovodrun not installed")


def _env():
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("HOROVOD_", "OMPI_", "PMI_", "PMIX_"))}
  env.update(OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1",
             TF_NUM_INTRAOP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_DISABLE_SCOPED_ALLOCATOR", None)
  env.pop("HABANA_SYNAPSE_LOGGER", None)
  return env


def horovodrun(command, timeout=600):
  """Runs `horovodrun -np 2 --gloo COMMAND`; returns its output."""
  cmd = [str(HOROVODRUN), "-np", "2", "--gloo", *map(str, command)]
  proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                        timeout=timeout)
  output = proc.stdout + proc.stderr
  assert proc.returncode == 0, output[-8000:]
  return output


@pytest.fixture(scope="module")
def data(tmp_path_factory, albert_tree):
  """Corpus, sentencepiece model, config, MRPC, SQuAD and pretraining data."""
  d = tmp_path_factory.mktemp("data")
  corpus = albert_data.write_corpus(d / "corpus.txt")
  model, vocab = albert_data.train_sentencepiece(corpus, d / "sp")
  vocab_size = len(vocab.read_text(encoding="utf-8").splitlines())
  albert_data.write_albert_config(d / "config.json", vocab_size)
  albert_data.write_mrpc(d / "glue")
  # 7 paragraphs of 3 questions: 21 examples, split 11 + 10.
  albert_data.write_squad_v1(d / "train.json", num_paragraphs=7)
  albert_data.write_squad_v1(d / "dev.json", num_paragraphs=2, seed=5,
                             prefix="d")
  run_script(albert_tree, "create_pretraining_data.py",
             "--input_file", corpus, "--output_file", d / "pre.tfrecord",
             "--vocab_file", vocab, "--spm_model_file", model,
             "--max_seq_length", 32, "--max_predictions_per_seq", 5,
             "--dupe_factor", 1, env=_env())
  return d


def variables(checkpoint_prefix):
  """{name: bytes} of every variable in a checkpoint."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(checkpoint_prefix))
  return {name: reader.get_tensor(name).tobytes()
          for name in reader.get_variable_to_shape_map()}


def count_records(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def assert_same_variables(a, b):
  va, vb = variables(a), variables(b)
  assert sorted(va) == sorted(vb)
  differing = [name for name in va if va[name] != vb[name]]
  assert not differing, differing


def assert_learning_rate(graph_dir, factor):
  """The graph's initial learning rate is LEARNING_RATE * factor (float32)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  graph = (Path(graph_dir) / "graph.pbtxt").read_text()
  def float_val(x):
    return "float_val: %r\n" % float(np.float32(x))
  assert float_val(LEARNING_RATE * factor) in graph
  if factor != 1:
    assert float_val(LEARNING_RATE) not in graph


def perf_records(out_dir):
  lines = (Path(out_dir) / "perf.jsonl").read_text().splitlines()
  return [json.loads(line) for line in lines]


def assert_perf(out_dir, script, rank, size, steps, batch_size):
  [record] = perf_records(out_dir)
  assert (record["script"], record["rank"], record["size"]) == (
      script, rank, size)
  assert record["steps"] == steps
  assert record["examples_per_step"] == batch_size
  assert record["total_examples"] == steps * batch_size
  assert record["total_examples_without_first"] == (steps - 1) * batch_size
  assert record["examples_per_sec"] == pytest.approx(
      steps * batch_size / record["total_time_s"])


def pretraining_args(tree, data, out):
  return [tree / "run_pretraining.py", "--use_horovod",
          "--input_file", data / "pre.tfrecord", "--output_dir", out,
          "--albert_config_file", data / "config.json",
          "--max_seq_length", 32, "--max_predictions_per_seq", 5,
          "--train_batch_size", 4, "--num_train_steps", 6,
          "--num_warmup_steps", 2, "--learning_rate", LEARNING_RATE,
          "--save_checkpoints_steps", 100]


def test_pretraining_two_ranks(albert_tree, data, tmp_path):
  out = tmp_path / "out"
  log = horovodrun([sys.executable] + pretraining_args(albert_tree, data, out)
                   + ["--do_eval", "--max_eval_steps", 2])
  # 6 steps and 2 warmup steps over 2 workers: 3 and 1 each.
  for rank_dir in (out, out / "1"):
    assert (rank_dir / "model.ckpt-3.index").exists()
    assert not list(rank_dir.glob("model.ckpt-6.*"))
    assert_learning_rate(rank_dir, 2)
  assert log.count("warmup starts at step 0, for 1 steps") >= 2
  assert_same_variables(out / "model.ckpt-3", out / "1" / "model.ckpt-3")
  # Rank 0 only evaluates.
  assert (out / "eval_results.txt").exists()
  assert not (out / "1" / "eval_results.txt").exists()
  assert not (out / "1" / "eval").exists()
  assert "Devices:" in log
  assert_perf(out, "run_pretraining", 0, 2, 3, 4)
  assert_perf(out / "1", "run_pretraining", 1, 2, 3, 4)


# Runs a script with Horovod's BroadcastGlobalVariablesHook replaced by a
# hook that does nothing: each rank keeps its own random initialisation.
WITHOUT_BROADCAST = """
import runpy, sys
import tensorflow as tf
import horovod.tensorflow as hvd

class NoBroadcast(tf.compat.v1.train.SessionRunHook):
  def __init__(self, *args, **kwargs):
    pass

hvd.BroadcastGlobalVariablesHook = NoBroadcast
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_control_without_broadcast_ranks_differ(albert_tree, data, tmp_path):
  out = tmp_path / "out"
  horovodrun([sys.executable, "-c", WITHOUT_BROADCAST]
             + pretraining_args(albert_tree, data, out))
  a, b = variables(out / "model.ckpt-3"), variables(out / "1" /
                                                    "model.ckpt-3")
  assert sorted(a) == sorted(b)
  assert [name for name in a if a[name] != b[name]]


def squad_args(tree, data, out, *extra):
  return [tree / "run_squad_v1.py",
          "--albert_config_file", data / "config.json",
          "--spm_model_file", data / "sp.model",
          "--vocab_file", data / "sp.vocab", "--output_dir", out,
          "--predict_file", data / "dev.json",
          "--predict_feature_file", out / "predict.tf_record",
          "--predict_feature_left_file", out / "predict_left.pkl",
          "--do_predict", "--max_seq_length", 48, "--max_query_length", 12,
          "--doc_stride", 16, "--predict_batch_size", 4, *extra]


@pytest.fixture(scope="module")
def squad_out(albert_tree, data, tmp_path_factory):
  out = tmp_path_factory.mktemp("squad") / "out"
  log = horovodrun([sys.executable] + squad_args(
      albert_tree, data, out, "--use_horovod", "--do_train",
      "--train_file", data / "train.json",
      "--train_feature_file", out / "train.tf_record",
      "--train_batch_size", 2, "--num_train_epochs", 1,
      "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100))
  return out, log


def test_squad_two_ranks(squad_out):
  out, log = squad_out
  # 21 examples / (2 per worker * 2 workers) = 5 steps.
  for rank_dir in (out, out / "1"):
    assert (rank_dir / "model.ckpt-5.index").exists()
    assert_learning_rate(rank_dir, 2)
  assert_same_variables(out / "model.ckpt-5", out / "1" / "model.ckpt-5")
  # Each rank wrote its own slice, 11 and 10 examples, to its own file.
  assert not (out / "train.tf_record").exists()
  assert count_records(out / "train.tf_record_0") > 0
  assert count_records(out / "train.tf_record_1") > 0
  assert "[0]<stderr>:INFO:tensorflow:  Num orig examples = 11\n" in log
  assert "[1]<stderr>:INFO:tensorflow:  Num orig examples = 10\n" in log
  # Rank 0 only predicts.
  assert (out / "predictions.json").exists()
  assert not list((out / "1").glob("*predictions.json"))
  assert_perf(out, "run_squad_v1", 0, 2, 5, 2)
  assert_perf(out / "1", "run_squad_v1", 1, 2, 5, 2)


def test_squad_predict_only_single_process(albert_tree, data, squad_out,
                                           tmp_path):
  """Without --do_train or Horovod, predicts from the checkpoints there."""
  out = tmp_path / "out"
  shutil.copytree(squad_out[0], out)
  for path in out.glob("*predictions.json"):
    path.unlink()
  for path in out.glob("model.ckpt-best.*"):
    path.unlink()
  run_script(albert_tree, "run_squad_v1.py",
             *squad_args(albert_tree, data, out)[1:], env=_env())
  assert (out / "predictions.json").exists()
  assert (out / "model.ckpt-best.index").exists()


def classifier_args(tree, data, out, *extra):
  return [tree / "run_classifier.py", "--task_name", "MRPC",
          "--data_dir", data / "glue",
          "--albert_config_file", data / "config.json",
          "--spm_model_file", data / "sp.model",
          "--vocab_file", data / "sp.vocab", "--output_dir", out,
          "--do_train", "--max_seq_length", 32, "--train_batch_size", 4,
          "--train_step", 8, "--warmup_step", 2,
          "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100,
          *extra]


def test_classifier_two_ranks(albert_tree, data, tmp_path):
  out = tmp_path / "out"
  horovodrun([sys.executable] + classifier_args(
      albert_tree, data, out, "--use_horovod", "--do_eval", "--do_predict",
      "--eval_batch_size", 4, "--predict_batch_size", 4))
  # 8 steps over 2 workers: 4 each.
  for rank_dir in (out, out / "1"):
    assert (rank_dir / "model.ckpt-4.index").exists()
    assert_learning_rate(rank_dir, 2)
  assert_same_variables(out / "model.ckpt-4", out / "1" / "model.ckpt-4")
  # 64 training examples, 32 in each rank's own file.
  assert count_records(out / "mrpc_train.tf_record_0") == 32
  assert count_records(out / "mrpc_train.tf_record_1") == 32
  # Rank 0 only evaluates and predicts.
  for name in ("eval_results.txt", "test_results.tsv"):
    assert (out / name).exists()
    assert not (out / "1" / name).exists()
  assert_perf(out, "run_classifier", 0, 2, 4, 4)
  assert_perf(out / "1", "run_classifier", 1, 2, 4, 4)


# Runs a script in a process where `import horovod` fails, as where Horovod
# is not installed.
WITHOUT_HOROVOD = """
import runpy, sys
sys.modules["horovod"] = None
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_single_process_without_horovod_installed(albert_tree, data,
                                                  tmp_path):
  out = tmp_path / "out"
  args = [str(a) for a in classifier_args(albert_tree, data, out)]
  args[args.index("--train_step") + 1] = "3"
  proc = subprocess.run([sys.executable, "-c", WITHOUT_HOROVOD, *args],
                        env=_env(), capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-8000:]
  assert (out / "model.ckpt-3.index").exists()
  assert not (out / "1").exists()
  assert (out / "mrpc_train.tf_record").exists()
  assert_learning_rate(out, 1)
  assert_perf(out, "run_classifier", 0, 1, 3, 4)
  assert "running without it" in proc.stderr

  # Asking for Horovod there is a one-line error.
  proc = subprocess.run(
      [sys.executable, "-c", WITHOUT_HOROVOD, *args, "--use_horovod",
       "--output_dir", str(tmp_path / "out2")],
      env=_env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --use_horovod: cannot import horovod.tensorflow")
