"""run_squad_v2.py and run_race.py end to end, run as a user runs them.

From the session's tiny pretraining checkpoint (tests/albert/tiny_albert.py): run_squad_v2.py
on SQuAD 2.0-format data with unanswerable questions, scored by SQuAD 2.0's evaluation, and
run_race.py on RACE's layout.
"""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import albert_data

from .tiny_albert import (assert_initialized_from_checkpoint, last, model_args, read_results, run,
                          squad_args)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
  return tmp_path_factory.mktemp("scripts")


def question_ids(path):
  data = json.loads(path.read_text())["data"]
  return [qa["id"] for article in data for p in article["paragraphs"]
          for qa in p["qas"]]


@pytest.fixture(scope="module")
def squad_v2_files(work):
  train = albert_data.write_squad_v2(work / "squad2_train.json",
                                     num_paragraphs=12)
  dev = albert_data.write_squad_v2(work / "squad2_dev.json", num_paragraphs=4,
                                   seed=9, prefix="d")
  return train, dev


def test_squad_v2_data_has_unanswerable_questions(squad_v2_files):
  for path in squad_v2_files:
    data = json.loads(path.read_text())
    answerable = unanswerable = 0
    for paragraph in data["data"][0]["paragraphs"]:
      context = paragraph["context"]
      for qa in paragraph["qas"]:
        if qa["is_impossible"]:
          unanswerable += 1
          assert qa["answers"] == []
          # The country asked about is not in the paragraph.
          assert qa["question"].split(" of ")[1].rstrip("?") not in context
        else:
          answerable += 1
          [answer] = qa["answers"]
          start = answer["answer_start"]
          assert context[start:start + len(answer["text"])] == answer["text"]
    assert answerable == 2 * unanswerable > 0


@pytest.fixture(scope="module")
def squad_v2_run(albert_tree, tiny_data, tiny_pretrained, work, squad_v2_files):
  """run_squad_v2.py trained and predicting: (its process, its output_dir)."""
  train_file, dev_file = squad_v2_files
  out = work / "squad2"
  proc = run(albert_tree, "run_squad_v2.py",
             *model_args(tiny_data, out),
             *squad_args(work / "squad2", train_file, dev_file,
                         "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
                         "--do_train", "--do_predict",
                         "--learning_rate=1e-3", "--num_train_epochs=2"),
             cwd=work)
  return proc, out


def test_run_squad_v2(albert_tree, squad_v2_run, squad_v2_files):
  _, dev_file = squad_v2_files
  proc, out = squad_v2_run
  assert_initialized_from_checkpoint(proc.stderr)
  qids = question_ids(dev_file)
  predictions = json.loads((out / "predictions.json").read_text())
  assert sorted(predictions) == sorted(qids)
  nbest = json.loads((out / "nbest_predictions.json").read_text())
  assert sorted(nbest) == sorted(qids)
  for entries in nbest.values():
    assert entries and abs(sum(e["probability"] for e in entries) - 1) < 1e-4
  null_odds = json.loads((out / "null_odds.json").read_text())
  assert sorted(null_odds) == sorted(qids)
  assert all(np.isfinite(v) for v in null_odds.values())
  # 36 training questions, batch 8, 2 epochs: 9 steps.
  assert (out / "model.ckpt-9.index").exists()

  # SQuAD 2.0's scores, written by the script ...
  scores = json.loads((out / "squad_v2_eval.json").read_text())
  assert (scores["total"], scores["HasAns_total"], scores["NoAns_total"]) == (
      12, 8, 4)
  for key in ("exact", "f1", "HasAns_exact", "NoAns_f1", "best_f1"):
    assert 0.0 <= scores[key] <= 100.0
  # ... agree with upstream's own exact and f1 of the final evaluation ...
  upstream = read_results(out / "eval_results.txt")
  assert scores["exact"] == pytest.approx(last(upstream, "exact"))
  assert scores["f1"] == pytest.approx(last(upstream, "f1"))
  assert "***** SQuAD 2.0 evaluation *****" in proc.stderr
  # ... and with the evaluation run as a script on the files written.
  script = subprocess.run(
      [sys.executable, str(albert_tree / "squad_v2_evaluation.py"),
       str(dev_file), str(out / "predictions.json"),
       "--na-prob-file", str(out / "null_odds.json")],
      capture_output=True, text=True, timeout=120)
  assert script.returncode == 0, script.stderr
  assert json.loads(script.stdout) == scores


def test_run_squad_v2_predicts_without_a_train_file(albert_tree, tiny_data, work,
                                                    squad_v2_run, squad_v2_files):
  """A predict-only run needs neither --do_train nor --train_file."""
  _, trained = squad_v2_run
  _, dev_file = squad_v2_files
  out = work / "squad2-predict-only"
  out.mkdir()
  for path in trained.glob("model.ckpt-9.*"):
    shutil.copy(path, out / path.name)
  args = [arg for arg in squad_args(work / "squad2-predict-only", None, dev_file)
          if not arg.startswith("--train_file=")]
  run(albert_tree, "run_squad_v2.py", *model_args(tiny_data, out), *args, "--do_predict",
      cwd=work)
  predictions = json.loads((out / "predictions.json").read_text())
  assert sorted(predictions) == sorted(question_ids(dev_file))
  assert json.loads((out / "squad_v2_eval.json").read_text())["total"] == 12


def test_run_race(albert_tree, tiny_data, tiny_pretrained, work):
  data_dir = albert_data.write_race(work / "race_data")
  for split in ("train", "dev", "test"):
    for level in ("middle", "high"):
      level_dir = data_dir / "RACE" / split / level
      articles = sorted(level_dir.glob("[0-9]*.txt"))
      assert articles
      lines = (level_dir / "all.txt").read_text().splitlines()
      assert [json.loads(line) for line in lines] == [
          json.loads(a.read_text()) for a in sorted(
              articles, key=lambda p: int(p.stem))]
  out = work / "race"
  proc = run(albert_tree, "run_race.py", *model_args(tiny_data, out),
             "--data_dir=%s" % data_dir,
             "--train_file=%s" % (work / "race_train.tfrecord"),
             "--eval_file=%s" % (work / "race_dev.tfrecord"),
             "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
             "--do_train", "--do_eval", "--do_predict",
             "--max_seq_length=64", "--max_qa_length=16",
             "--train_batch_size=8", "--eval_batch_size=8",
             "--predict_batch_size=8", "--learning_rate=1e-3",
             "--train_step=12", "--warmup_step=2",
             "--save_checkpoints_steps=12", "--iterations_per_loop=10",
             cwd=work)
  assert_initialized_from_checkpoint(proc.stderr)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  # 24 articles of 3 questions; each record holds the 4 options.
  records = list(tf.data.TFRecordDataset(str(work / "race_train.tfrecord")))
  assert len(records) == 72
  example = tf.train.Example.FromString(records[0].numpy())
  assert len(example.features.feature["input_ids"].int64_list.value) == 4 * 64
  results = read_results(out / "eval_results.txt")
  assert last(results, "global_step") == 12
  assert 0.0 <= last(results, "eval_accuracy") <= 1.0
  assert np.isfinite(last(results, "eval_loss"))
  predicted = read_results(out / "predict_results.txt")
  assert 0.0 <= last(predicted, "eval_accuracy") <= 1.0
  assert (out / "predict.tf_record").exists()
