"""ALBERT end to end on TensorFlow 2, run as a user runs the scripts.

On the session's tiny ALBERT (tests/albert/tiny_albert.py), on the CPU, with
upstream's flags: create_pretraining_data.py -> run_pretraining.py (train,
eval, resume) -> run_classifier.py (MRPC and STS-B) and run_squad_v1.py,
both from the pretraining checkpoint; precision flags in every script.
"""
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

import albert_data
from .tiny_albert import (MAX_PRED, SEQ, STEPS_1, STEPS_2, assert_initialized_from_checkpoint,
                          last, model_args, pretrain, read_results, run, script_env,
                          squad_args)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
  return tmp_path_factory.mktemp("e2e")


def test_create_pretraining_data(tiny_data):
  assert tiny_data["vocab_size"] > 50


def test_pretraining_trains_and_writes_checkpoint(tiny_pretrained,
                                                  tiny_data):
  results = tiny_pretrained["results_1"]
  assert last(results, "global_step") == STEPS_1
  for key in ("loss", "masked_lm_loss", "sentence_order_loss"):
    assert math.isfinite(last(results, key)), results
  assert 'model_checkpoint_path: "model.ckpt-%d"' % STEPS_1 in (
      tiny_pretrained["ckpt_state_1"])
  # Already below the loss of an untrained model (uniform over the
  # vocabulary for the masked LM, a coin toss for sentence order).
  untrained = math.log(tiny_data["vocab_size"]) + math.log(2)
  assert last(results, "loss") < untrained - 0.1, (results, untrained)
  log = tiny_pretrained["first"].stderr
  assert "Saving checkpoints for %d into" % STEPS_1 in log
  # The default precision adds no rewrite: the estimator's own session config.
  assert "Precision: fp32 on CPU" in log


def cpu_has_bfloat16():
  try:
    flags = open("/proc/cpuinfo", encoding="utf-8").read().split()
  except OSError:
    return False
  return "avx512_bf16" in flags or "amx_bf16" in flags


def converted_to_bfloat16(log):
  """The node counts Grappler's oneDNN rewrite logs as converted to bfloat16."""
  return [int(n) for n in re.findall(r"Converted (\d+)/\d+ nodes to bfloat16", log)]


# Grappler says what it converted in an INFO line of TensorFlow's C++ log.
def bf16_env():
  return dict(script_env(), TF_CPP_MIN_LOG_LEVEL="0")


BF16_ON_CPU = "Precision: bf16 on CPU: auto_mixed_precision_onednn_bfloat16"


@pytest.mark.skipif(not cpu_has_bfloat16(), reason="the CPU has no bfloat16 instructions")
def test_pretraining_with_precision_bf16(albert_tree, tiny_data, work):
  out = work / "pretrain_bf16"
  proc = pretrain(albert_tree, tiny_data, out, STEPS_1, work, "--precision=bf16",
                  env=bf16_env())
  assert BF16_ON_CPU in proc.stderr
  converted = converted_to_bfloat16(proc.stderr)
  assert converted and max(converted) > 0, proc.stderr[-3000:]
  results = read_results(out / "eval_results.txt")
  assert last(results, "global_step") == STEPS_1
  untrained = math.log(tiny_data["vocab_size"]) + math.log(2)
  assert math.isfinite(last(results, "loss"))
  assert last(results, "loss") < untrained - 0.1, (results, untrained)


def test_pretraining_resumes_and_loss_falls(tiny_pretrained):
  log = tiny_pretrained["second"].stderr
  # The second run restores step STEPS_1 and carries on from there.
  assert re.search(r"Restoring parameters from \S*model\.ckpt-%d\b" % STEPS_1,
                   log), log[-3000:]
  saves = [int(s) for s in re.findall(r"Saving checkpoints for (\d+) into",
                                      log)]
  assert saves and saves[0] == STEPS_1 and saves[-1] == STEPS_2, saves
  assert 0 not in saves
  results = tiny_pretrained["results_2"]
  assert last(results, "global_step") == STEPS_2
  loss_1 = last(tiny_pretrained["results_1"], "loss")
  loss_2 = last(results, "loss")
  assert math.isfinite(loss_2)
  assert loss_2 < loss_1 - 0.1, (loss_1, loss_2)
  final = re.search(r"Loss for final step: (\d+\.\d+)", log)
  assert final and math.isfinite(float(final.group(1)))


def classifier_args(data, pretrained, task, data_dir, output_dir, steps):
  return ["--task_name=%s" % task, "--data_dir=%s" % data_dir,
          *model_args(data, output_dir), "--init_checkpoint=%s" % pretrained["checkpoint"],
          "--do_lower_case", "--max_seq_length=%d" % SEQ,
          "--train_batch_size=8", "--eval_batch_size=8",
          "--predict_batch_size=8", "--learning_rate=1e-3",
          "--train_step=%d" % steps, "--warmup_step=2",
          "--save_checkpoints_steps=%d" % steps, "--iterations_per_loop=10"]


def test_run_classifier_mrpc(albert_tree, tiny_data, tiny_pretrained, work):
  data_dir = albert_data.write_mrpc(work / "glue")
  out = work / "mrpc"
  proc = run(albert_tree, "run_classifier.py",
             *classifier_args(tiny_data, tiny_pretrained, "MRPC", data_dir,
                              out, 20),
             "--do_train", "--do_eval", "--do_predict",
             "--export_dir=%s" % (work / "mrpc_export"), cwd=work)
  assert_initialized_from_checkpoint(proc.stderr)
  assert list((work / "mrpc_export").glob("*/saved_model.pb"))
  results = read_results(out / "eval_results.txt")
  accuracy = last(results, "eval_accuracy")
  assert 0.0 <= accuracy <= 1.0
  assert math.isfinite(last(results, "eval_loss"))
  assert last(results, "global_step") == 20
  rows = (out / "test_results.tsv").read_text().splitlines()
  assert len(rows) == 8
  for row in rows:
    probs = [float(p) for p in row.split("\t")]
    assert len(probs) == 2 and abs(sum(probs) - 1.0) < 1e-4
  submit = (out / "submit_results.tsv").read_text().splitlines()
  assert submit[0].split("\t") == ["index", "prediction"]
  assert len(submit) == 9
  assert {line.split("\t")[1] for line in submit[1:]} <= {"0", "1"}


def parse_array(text, key):
  match = re.search(r"^%s = \[([^\]]*)\]" % key, text, re.M)
  assert match, text
  return np.array([float(v) for v in match.group(1).split()])


def test_run_classifier_stsb_metrics(albert_tree, tiny_data,
                                     tiny_pretrained, work):
  data_dir = albert_data.write_stsb(work / "glue")
  out = work / "stsb"
  proc = run(albert_tree, "run_classifier.py",
             *classifier_args(tiny_data, tiny_pretrained, "STS-B", data_dir,
                              out, 10),
             "--do_train", "--do_eval", cwd=work)
  assert_initialized_from_checkpoint(proc.stderr)
  text = (out / "eval_results.txt").read_text()
  block = text.split("=" * 50)[-2]  # the last checkpoint's results
  pred = parse_array(block, "pred")
  labels = parse_array(block, "label_ids")
  assert len(pred) == len(labels) == 16
  pearson = float(re.search(r"^pearson = (\S+)$", block, re.M).group(1))
  mse = float(re.search(r"^MSE = (\S+)$", block, re.M).group(1))
  assert -1.0 <= pearson <= 1.0
  if np.std(pred) > 1e-3:  # else the printed 8 digits cannot check it
    assert pearson == pytest.approx(np.corrcoef(pred, labels)[0, 1],
                                    abs=2e-3)
  assert mse == pytest.approx(np.mean((pred - labels) ** 2), rel=1e-3)


def test_run_squad_v1(albert_tree, tiny_data, tiny_pretrained, work):
  train_file = albert_data.write_squad_v1(work / "squad_train.json")
  dev_file = albert_data.write_squad_v1(work / "squad_dev.json", seed=5,
                                        num_paragraphs=4, prefix="dev")
  out = work / "squad"
  proc = run(albert_tree, "run_squad_v1.py", *model_args(tiny_data, out),
             "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
             *squad_args(out, train_file, dev_file, "--do_train", "--do_predict",
                         "--learning_rate=1e-3", "--num_train_epochs=3",
                         "--export_dir=%s" % (work / "squad_export")), cwd=work)
  assert_initialized_from_checkpoint(proc.stderr)
  assert list((work / "squad_export").glob("saved_model/*/saved_model.pb"))
  assert (work / "squad_export" / "albert_model.tflite").stat().st_size > 0
  dev = json.loads(dev_file.read_text())
  qids = {qa["id"] for article in dev["data"]
          for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
  predictions = json.loads((out / "predictions.json").read_text())
  assert set(predictions) == qids
  assert all(isinstance(v, str) for v in predictions.values())
  results = read_results(out / "eval_results.txt")
  exact, f1 = last(results, "exact_match"), last(results, "f1")
  assert 0.0 <= exact <= f1 <= 100.0
  final = re.findall(r"^\S*\s*(exact_match|f1) = ([\d.]+)$",
                     proc.stderr, re.M)
  assert final, proc.stderr[-3000:]


def squad_training_args(data, work, out, *extra, train_file=None):
  """run_squad_v1.py's training flags, or run_squad_v2.py's with its train_file."""
  train_file = train_file or albert_data.write_squad_v1(work / "squad_train.json")
  return [*model_args(data, out), *squad_args(out, train_file, train_file, "--do_train",
                                              "--learning_rate=1e-3", *extra)]


@pytest.mark.skipif(not cpu_has_bfloat16(), reason="the CPU has no bfloat16 instructions")
def test_fine_tuning_with_precision_bf16(albert_tree, tiny_data, tiny_pretrained, work):
  """Both fine-tuning scripts train with the oneDNN rewrite on, on top of the
  ScopedAllocator session config they pass (test_precision.py checks
  that the config keeps both)."""
  data_dir = albert_data.write_mrpc(work / "glue")
  mrpc = run(albert_tree, "run_classifier.py",
             *classifier_args(tiny_data, tiny_pretrained, "MRPC", data_dir,
                              work / "mrpc_bf16", 4),
             "--do_train", "--precision=bf16", cwd=work, env=bf16_env())
  squad = run(albert_tree, "run_squad_v1.py",
              *squad_training_args(tiny_data, work, work / "squad_bf16",
                          "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
                          "--num_train_epochs=0.5", "--precision=bf16"),
              cwd=work, env=bf16_env())
  for proc in (mrpc, squad):
    assert BF16_ON_CPU in proc.stderr
    converted = converted_to_bfloat16(proc.stderr)
    assert converted and max(converted) > 0, proc.stderr[-3000:]
    final = re.search(r"Loss for final step: (\S+)\.$", proc.stderr, re.M)
    assert final and math.isfinite(float(final.group(1))), proc.stderr[-3000:]


def race_args(data, work, out, *extra):
  return ["--data_dir=%s" % albert_data.write_race(work / "race_data"), *model_args(data, out),
          "--train_file=%s" % (out / "train.tfrecord"),
          # upstream's run_race.py evaluates by default
          "--do_train", "--nodo_eval", "--max_seq_length=%d" % SEQ, "--max_qa_length=16",
          "--train_batch_size=8", "--learning_rate=1e-3",
          "--save_checkpoints_steps=1000", "--iterations_per_loop=10", *extra]


def script_args(script, data, work, out):
  """The least each script needs to get as far as its RunConfig."""
  if script == "run_pretraining.py":
    return ["--input_file=%s" % data["record"], "--output_dir=%s" % out,
            "--albert_config_file=%s" % data["config"], "--do_train",
            "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED]
  if script == "run_classifier.py":
    return ["--task_name=MRPC", "--data_dir=%s" % albert_data.write_mrpc(work / "glue"),
            "--output_dir=%s" % out, "--albert_config_file=%s" % data["config"],
            "--vocab_file=%s" % data["spm_vocab"], "--spm_model_file=%s" % data["spm_model"],
            "--do_train", "--max_seq_length=%d" % SEQ]
  if script == "run_race.py":
    return race_args(data, work, out)
  if script == "run_squad_v2.py":
    return squad_training_args(data, work, out, train_file=albert_data.write_squad_v2(
        work / "squad_v2_train.json"))
  return squad_training_args(data, work, out)


@pytest.mark.skipif(not cpu_has_bfloat16(), reason="the CPU has no bfloat16 instructions")
@pytest.mark.parametrize("script,steps", [
    ("run_squad_v2.py", ["--num_train_epochs=1"]),
    ("run_race.py", ["--train_step=3", "--warmup_step=1"])])
def test_squad_v2_and_race_with_precision_bf16(albert_tree, tiny_data, work,
                                               script, steps):
  """run_squad_v2.py and run_race.py train with the oneDNN rewrite on, on
  top of their ScopedAllocator session config, as the other fine-tuning
  scripts do (a few steps from scratch: the rewrite, not the model, is
  under test)."""
  out = work / ("bf16_" + script)
  proc = run(albert_tree, script, *script_args(script, tiny_data, work, out),
             *steps, "--precision=bf16", cwd=work, env=bf16_env())
  assert BF16_ON_CPU in proc.stderr
  converted = converted_to_bfloat16(proc.stderr)
  assert converted and max(converted) > 0, proc.stderr[-3000:]
  final = re.search(r"Loss for final step: (\S+)\.$", proc.stderr, re.M)
  assert final and math.isfinite(float(final.group(1))), proc.stderr[-3000:]


FP16_ON_CPU = ("error: --precision=fp16 is not supported on a CPU (TensorFlow 2.15 only "
               "emulates float16 there, in float32); use --precision=bf16 on a CPU with "
               "AVX-512, or fp16 on a GPU.")


@pytest.mark.parametrize("script", ["run_pretraining.py", "run_classifier.py",
                                    "run_squad_v1.py", "run_squad_v2.py",
                                    "run_race.py"])
def test_unsupported_precision_stops_with_one_line(albert_tree, tiny_data, work,
                                                   script):
  """fp16 on this CPU is an error, not a float32 run; so is a precision absl
  does not know (its check is the flag's own, the same in every script)."""
  out = work / ("fp16_" + script)
  cmd = [sys.executable, str(albert_tree / script),
         *script_args(script, tiny_data, work, out)]
  proc = subprocess.run(cmd + ["--precision=fp16"], cwd=work, env=script_env(),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1] == FP16_ON_CPU
  assert not list(out.glob("*")), "the run wrote %s" % list(out.glob("*"))
  if script != "run_pretraining.py":
    return
  proc = subprocess.run(cmd + ["--precision=fp8"], cwd=work, env=script_env(),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  assert ("flag --precision=fp8: value should be one of <fp32|bf16|fp16>"
          in proc.stderr), proc.stderr[-3000:]


def test_stsb_metrics_match_numpy(albert_tree, monkeypatch):
  """The STS-B metric_fn's Pearson / concat metrics, against numpy."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  monkeypatch.syspath_prepend(str(albert_tree))
  for name in [m for m in sys.modules
               if m == "albert" or m.startswith("albert.")]:
    monkeypatch.delitem(sys.modules, name)
  import albert.classifier_utils as cu  # pylint: disable=import-outside-toplevel
  assert cu.__file__.startswith(str(albert_tree))
  # The metrics the STS-B metric_fn calls: the overlay's, under contrib's old name.
  metrics = cu.contrib_metrics
  assert metrics.__name__ == "albert.streaming_metrics"
  rng = np.random.RandomState(0)
  cases = [
      (rng.randn(3, 8), None),
      (rng.randn(3, 8), (rng.rand(3, 8) > 0.3).astype(np.float32)),
      # Predictions that barely vary around a large mean.
      (0.028 + 1e-5 * rng.randn(3, 8), None),
  ]
  for preds, weights in cases:
    labels = preds * 3.0 + rng.randn(*preds.shape)
    if weights is None:
      weights = np.ones_like(preds, dtype=np.float32)
    with tf.Graph().as_default():
      x = tf.compat.v1.placeholder(tf.float32, [None])
      y = tf.compat.v1.placeholder(tf.float32, [None])
      w = tf.compat.v1.placeholder(tf.float32, [None])
      value, update = metrics.streaming_pearson_correlation(x, y, weights=w)
      cat, cat_update = metrics.streaming_concat(x)
      with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.local_variables_initializer())
        for i in range(len(preds)):
          sess.run([update, cat_update],
                   {x: preds[i], y: labels[i], w: weights[i]})
        got, concatenated = sess.run([value, cat])
    x32 = preds.astype(np.float32).astype(np.float64).ravel()
    y32 = labels.astype(np.float32).astype(np.float64).ravel()
    wts = weights.ravel().astype(np.float64)
    mx, my = np.average(x32, weights=wts), np.average(y32, weights=wts)
    cov = np.sum(wts * (x32 - mx) * (y32 - my))
    expected = cov / np.sqrt(np.sum(wts * (x32 - mx) ** 2) *
                             np.sum(wts * (y32 - my) ** 2))
    assert got == pytest.approx(expected, abs=2e-3)
    np.testing.assert_allclose(concatenated, x32, rtol=1e-6)
