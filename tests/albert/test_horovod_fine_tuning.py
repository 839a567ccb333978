"""The fine-tuning scripts trained by `horovodrun -np 2 --gloo` on the CPU: run_squad_v1.py,
run_classifier.py (MRPC), run_squad_v2.py and run_race.py.

The session's tiny data and model (tests/albert/tiny_albert.py). For each script: both ranks
exit 0 and end with bitwise-identical variables, those of rank 0's last checkpoint; only rank 0
writes checkpoints and summaries, rank 1 only its perf.jsonl in output_dir/1; each rank writes
and reads its own slice of the training examples (an exact partition) in a record file named by
its global rank; steps, warm-up and learning rate are scaled as Habana's change list says;
evaluation and prediction happen on rank 0 only; PerfLoggingHook's JSON line matches the steps
and batch size. Evaluation-only runs of run_classifier.py and run_race.py with the training
run's --train_step end; run_squad_v1.py predicts in a single process from the two-rank run's
checkpoints; and one more run trains in a single process with Horovod made unimportable.
"""
import shutil
import subprocess
import sys

import pytest

import albert_data

from .horovod_runs import (LEARNING_RATE, assert_learning_rate, assert_only_rank0_saves,
                           assert_perf, assert_ranks_identical, assert_squad_trained_on_two_ranks,
                           count_records, horovodrun, needs_horovodrun, recording, run_env,
                           without_evaluation)
from .tree import run_script

pytestmark = needs_horovodrun


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
  tmp = tmp_path_factory.mktemp("squad")
  out, record = tmp / "out", tmp / "record"
  log = horovodrun(recording(record) + squad_args(
      albert_tree, data, out, "--use_horovod", "--do_train",
      "--train_file", data / "train.json",
      "--train_feature_file", out / "train.tf_record",
      "--train_batch_size", 2, "--num_train_epochs", 1,
      "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100))
  return out, log, record


def test_squad_two_ranks(squad_out):
  out, log, record = squad_out
  assert_squad_trained_on_two_ranks(out, log, record)
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
             *squad_args(albert_tree, data, out)[1:], env=run_env())
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


@pytest.fixture(scope="module")
def classifier_out(albert_tree, data, tmp_path_factory):
  """A two-rank MRPC run with evaluation: (output_dir, recorded variables)."""
  tmp = tmp_path_factory.mktemp("classifier")
  out, record = tmp / "out", tmp / "record"
  horovodrun(recording(record) + classifier_args(
      albert_tree, data, out, "--use_horovod", "--do_eval", "--do_predict",
      "--eval_batch_size", 4, "--predict_batch_size", 4))
  return out, record


def test_classifier_two_ranks(classifier_out):
  out, record = classifier_out
  # 8 steps over 2 workers: 4 each.
  assert (out / "model.ckpt-4.index").exists()
  assert_learning_rate(out, 2)
  assert_only_rank0_saves(out)
  assert_ranks_identical(record, out / "model.ckpt-4")
  # 64 training examples, 32 in each rank's own file.
  assert count_records(out / "mrpc_train.tf_record_0") == 32
  assert count_records(out / "mrpc_train.tf_record_1") == 32
  # Rank 0 only evaluates and predicts.
  for name in ("eval_results.txt", "test_results.tsv"):
    assert (out / name).exists()
    assert not (out / "1" / name).exists()
  assert_perf(out, "run_classifier", 0, 2, 4, 4)
  assert_perf(out / "1", "run_classifier", 1, 2, 4, 4)


def test_classifier_eval_only_after_training(albert_tree, data,
                                             classifier_out, tmp_path):
  """--nodo_train --do_eval with the training run's --train_step ends."""
  out = without_evaluation(classifier_out[0], tmp_path / "out", "eval_results.txt",
                           "best_trial.txt", "test_results.tsv")
  args = classifier_args(albert_tree, data, out, "--use_horovod",
                         "--nodo_train", "--do_eval", "--eval_batch_size", 4)
  horovodrun([sys.executable] + args, timeout=300)
  # Rank 0 evaluated the checkpoint of training's last step.
  assert (out / "best_trial.txt").read_text().startswith("4:")
  assert "global_step = 4\n" in (out / "eval_results.txt").read_text()
  assert not (out / "1" / "eval_results.txt").exists()


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
                        env=run_env(), capture_output=True, text=True,
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
      env=run_env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --use_horovod: cannot import horovod.tensorflow")


def model_args(data_dir, out):
  return ["--albert_config_file", data_dir / "config.json",
          "--spm_model_file", data_dir / "sp.model",
          "--vocab_file", data_dir / "sp.vocab", "--output_dir", out]


@pytest.mark.long
def test_squad_v2_two_ranks(albert_tree, data, tmp_path):
  # 7 paragraphs of 3 questions (one unanswerable): 21 examples, 11 + 10.
  train = albert_data.write_squad_v2(tmp_path / "train.json", num_paragraphs=7)
  dev = albert_data.write_squad_v2(tmp_path / "dev.json", num_paragraphs=2,
                                   seed=9, prefix="d")
  out, record = tmp_path / "out", tmp_path / "record"
  log = horovodrun(recording(record) + [
      albert_tree / "run_squad_v2.py", "--use_horovod",
      *model_args(data, out), "--train_file", train, "--predict_file", dev,
      "--train_feature_file", out / "train.tf_record",
      "--predict_feature_file", out / "predict.tf_record",
      "--predict_feature_left_file", out / "predict_left.pkl",
      "--do_train", "--do_predict", "--max_seq_length", 48,
      "--max_query_length", 12, "--doc_stride", 16,
      "--train_batch_size", 2, "--predict_batch_size", 4,
      "--num_train_epochs", 1, "--learning_rate", LEARNING_RATE,
      "--save_checkpoints_steps", 100])
  assert_squad_trained_on_two_ranks(out, log, record)
  # Rank 0 only predicts and scores.
  for name in ("predictions.json", "nbest_predictions.json", "null_odds.json",
               "squad_v2_eval.json", "eval_results.txt"):
    assert (out / name).exists()
    assert not (out / "1" / name).exists()
  assert "Devices:" in log
  assert_perf(out, "run_squad_v2", 0, 2, 5, 2)
  assert_perf(out / "1", "run_squad_v2", 1, 2, 5, 2)


def race_args(tree, data, race_dir, out, *extra):
  return [tree / "run_race.py", "--use_horovod",
          *model_args(data, out), "--data_dir", race_dir,
          "--train_file", out / "train.tf_record",
          "--eval_file", out / "eval.tf_record", "--max_seq_length", 32,
          "--max_qa_length", 12, "--train_batch_size", 4,
          "--eval_batch_size", 4, "--predict_batch_size", 4,
          "--train_step", 8, "--warmup_step", 2,
          "--learning_rate", LEARNING_RATE, "--save_checkpoints_steps", 100,
          *extra]


@pytest.fixture(scope="module")
def race_out(albert_tree, data, tmp_path_factory):
  """A two-rank RACE run with evaluation and prediction:
  (RACE data directory, output_dir, recorded variables, log)."""
  tmp = tmp_path_factory.mktemp("race")
  # 24 articles of 3 questions: 72 examples, 36 for each rank.
  race_dir = albert_data.write_race(tmp / "race")
  out, record = tmp / "out", tmp / "record"
  log = horovodrun(recording(record) + race_args(
      albert_tree, data, race_dir, out, "--do_train", "--do_eval",
      "--do_predict"))
  return race_dir, out, record, log


def test_race_two_ranks(race_out):
  _, out, record, log = race_out
  # 8 steps over 2 workers: 4 each, warm-up 2 -> 1.
  assert (out / "model.ckpt-4.index").exists()
  assert_learning_rate(out, 2)
  assert_only_rank0_saves(out)
  assert_ranks_identical(record, out / "model.ckpt-4")
  assert log.count("warmup starts at step 0, for 1 steps") >= 2
  assert not (out / "train.tf_record").exists()
  assert count_records(out / "train.tf_record_0") == 36
  assert count_records(out / "train.tf_record_1") == 36
  # Rank 0 only evaluates and predicts.
  for name in ("eval_results.txt", "predict_results.txt"):
    assert (out / name).exists()
    assert not (out / "1" / name).exists()
  assert "Devices:" in log
  assert_perf(out, "run_race", 0, 2, 4, 4)
  assert_perf(out / "1", "run_race", 1, 2, 4, 4)


def test_race_eval_only_after_training(albert_tree, data, race_out, tmp_path):
  """--nodo_train --do_eval with the training run's --train_step ends: the
  steps are divided as in training, so rank 0 waits for step 4, not 8."""
  race_dir, trained, _, _ = race_out
  out = without_evaluation(trained, tmp_path / "out", "eval_results.txt",
                           "predict_results.txt")
  horovodrun([sys.executable] + race_args(albert_tree, data, race_dir, out,
                                          "--nodo_train", "--do_eval"),
             timeout=300)
  # Rank 0 evaluated the checkpoint of training's last step.
  assert "global_step = 4\n" in (out / "eval_results.txt").read_text()
  assert (out / "model.ckpt-best.index").exists()
  assert not (out / "1" / "eval_results.txt").exists()
