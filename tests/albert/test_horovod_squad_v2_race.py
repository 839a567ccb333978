"""run_squad_v2.py and run_race.py trained by `horovodrun -np 2 --gloo`.

As test_horovod_training.py does for the other scripts: both ranks
exit 0 and end with bitwise-identical variables, those of rank 0's last
checkpoint (rank 1 saves none, so each script runs through RECORDING, which
records the variables every rank ends training with); only rank 0 writes
checkpoints and summaries, rank 1 only its perf.jsonl in output_dir/1; each
rank writes and reads its own slice of the training examples (an exact
partition) in a record file named by its global rank; steps, warm-up and
learning rate are scaled as for run_squad_v1.py and run_classifier.py;
evaluation and prediction happen on rank 0 only; PerfLoggingHook's JSON line
matches the steps and batch size.  An evaluation-only run of run_race.py
with the training run's --train_step ends, as run_classifier.py's does.
"""
import sys

import pytest

import albert_data
# The same tiny model and data, launcher and checks as the other scripts'.
from .test_horovod_training import (  # pylint: disable=unused-import
    HOROVODRUN, LEARNING_RATE, assert_learning_rate, assert_only_rank0_saves,
    assert_perf, assert_ranks_identical, assert_squad_trained_on_two_ranks,
    count_records, data, horovodrun, recording, without_evaluation)

pytestmark = pytest.mark.skipif(not HOROVODRUN.exists(),
                                reason="horovodrun not installed")


def model_args(data_dir, out):
  return ["--albert_config_file", data_dir / "config.json",
          "--spm_model_file", data_dir / "sp.model",
          "--vocab_file", data_dir / "sp.vocab", "--output_dir", out]


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
