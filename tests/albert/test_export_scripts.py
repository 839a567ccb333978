"""The export scripts end to end, and fine-tuning from what they export.

From the session's tiny pretraining checkpoint (tests/albert/tiny_albert.py):
export_checkpoints.py then run_classifier.py from its checkpoint, and export_to_tfhub.py then
run_classifier.py, run_squad_v1.py and run_squad_v2.py fine-tuning from the exported module
with --albert_hub_module_handle. Fine-tuning from the module gives the same logits, metrics and
trained weights as fine-tuning from the checkpoint it was exported from.
"""
import json
import re
import shutil

import numpy as np
import pytest

import albert_data

from .tiny_albert import (assert_initialized_from_checkpoint, hub_importable, last, model_args,
                          read_results, run, squad_args)

needs_hub = pytest.mark.skipif(
    not hub_importable(),
    reason="tensorflow_hub is not importable (pip install -r requirements.txt)")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
  return tmp_path_factory.mktemp("scripts")


def albert_directory(data, pretrained, path):
  """A directory laid out as export scripts expect a released model."""
  path.mkdir(parents=True, exist_ok=True)
  shutil.copy(data["config"], path / "albert_config.json")
  shutil.copy(data["spm_model"], path / "30k-clean.model")
  shutil.copy(data["spm_vocab"], path / "30k-clean.vocab")
  for f in pretrained["out"].glob(pretrained["checkpoint"].name + ".*"):
    shutil.copy(f, path / f.name)
  return path


def checkpoint_values(prefix):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(str(prefix))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def test_export_checkpoints_then_run_classifier(albert_tree, tiny_data,
                                                tiny_pretrained, work):
  directory = albert_directory(tiny_data, tiny_pretrained,
                               work / "albert_dir_ckpt")
  exported = work / "exported" / "model.ckpt"
  run(albert_tree, "export_checkpoints.py",
      "--albert_directory=%s" % directory,
      "--checkpoint_name=%s" % tiny_pretrained["checkpoint"].name,
      "--export_path=%s" % exported, cwd=work)
  values = checkpoint_values(exported)
  source = checkpoint_values(tiny_pretrained["checkpoint"])
  # The model's variables, without the optimizer's slots.
  assert not [n for n in values if "adam_" in n or "lamb_" in n]
  assert any(n.startswith("bert/") for n in values)
  assert any(n.startswith("cls/") for n in values)
  for name, value in values.items():
    if name != "global_step":
      np.testing.assert_array_equal(value, source[name], err_msg=name)

  data_dir = albert_data.write_mrpc(work / "glue_export")
  out = work / "mrpc_from_export"
  proc = run(albert_tree, "run_classifier.py", "--task_name=MRPC",
             "--data_dir=%s" % data_dir, *model_args(tiny_data, out),
             "--init_checkpoint=%s" % exported, "--do_lower_case",
             "--max_seq_length=32", "--train_batch_size=8",
             "--eval_batch_size=8", "--learning_rate=1e-3",
             "--train_step=10", "--warmup_step=2",
             "--save_checkpoints_steps=10", "--do_train", "--do_eval",
             cwd=work)
  assert_initialized_from_checkpoint(proc.stderr)
  results = read_results(out / "eval_results.txt")
  assert last(results, "global_step") == 10
  assert 0.0 <= last(results, "eval_accuracy") <= 1.0


@pytest.fixture(scope="module")
def hub_module(albert_tree, tiny_data, tiny_pretrained, work):
  directory = albert_directory(tiny_data, tiny_pretrained,
                               work / "albert_dir_hub")
  module = work / "hub_module"
  run(albert_tree, "export_to_tfhub.py", "--albert_directory=%s" % directory,
      "--checkpoint_name=%s" % tiny_pretrained["checkpoint"].name,
      "--export_path=%s" % module, cwd=work)
  return module


@needs_hub
def test_export_to_tfhub_writes_a_module(hub_module, tiny_data):
  assert (hub_module / "tfhub_module.pb").exists()
  assert (hub_module / "saved_model.pb").exists()
  assert ((hub_module / "assets" / "30k-clean.model").read_bytes() ==
          tiny_data["spm_model"].read_bytes())


@needs_hub
def test_run_classifier_from_hub_module(albert_tree, tiny_data,
                                        hub_module, work):
  data_dir = albert_data.write_mrpc(work / "glue_hub")
  out = work / "mrpc_from_hub"
  proc = run(albert_tree, "run_classifier.py", "--task_name=MRPC",
             "--data_dir=%s" % data_dir,
             "--albert_config_file=%s" % tiny_data["config"],
             "--spm_model_file=%s" % tiny_data["spm_model"],
             "--albert_hub_module_handle=%s" % hub_module,
             "--output_dir=%s" % out, "--max_seq_length=32",
             "--train_batch_size=8", "--eval_batch_size=8",
             "--learning_rate=1e-3", "--train_step=10", "--warmup_step=2",
             "--save_checkpoints_steps=10", "--do_train", "--do_eval",
             cwd=work)
  assert "creating model from hub_module: %s" % hub_module in proc.stderr
  results = read_results(out / "eval_results.txt")
  assert last(results, "global_step") == 10
  assert 0.0 <= last(results, "eval_accuracy") <= 1.0


def run_seeded(tree, script, *args, cwd):
  """The script with --seed: the training data's shuffle order repeats."""
  proc = run(tree, script, *args, "--seed=1234", cwd=cwd)
  assert "'_tf_random_seed': 1234" in proc.stderr
  return proc


def fine_tune(tree, script, data, out, files, *model):
  """Trains (do_train), then predicts from the trained checkpoint alone."""
  args = [*model_args(data, out), *squad_args(out, *files)]
  run_seeded(tree, script, *args, *model, "--do_train",
             "--learning_rate=1e-3", "--num_train_epochs=2", cwd=out.parent)
  # Leave the trained checkpoint only, so that prediction scores it.
  for stale in out.glob("model.ckpt-0.*"):
    stale.unlink()
  run_seeded(tree, script, *args, *model, "--do_predict", cwd=out.parent)
  [index] = [p for p in out.glob("model.ckpt-*.index") if "best" not in p.name]
  null_odds = out / "null_odds.json"
  return dict(nbest=json.loads((out / "nbest_predictions.json").read_text()),
              null_odds=(json.loads(null_odds.read_text())
                         if null_odds.exists() else None),
              predictions=json.loads((out / "predictions.json").read_text()),
              results=read_results(out / "eval_results.txt"),
              weights=checkpoint_values(out / index.stem))


@needs_hub
@pytest.mark.long
@pytest.mark.parametrize("script,squad", [("run_squad_v1.py", "v1"),
                                          ("run_squad_v2.py", "v2")])
def test_fine_tuning_from_hub_module_equals_from_checkpoint(
    albert_tree, tiny_data, tiny_pretrained, hub_module, work, script,
    squad):
  """Same data and seed: the same logits, metrics and trained weights.

  The task head starts from one checkpoint in both runs (a zero-learning-
  rate step of the script itself writes it), since its random initial
  values depend on how many ops the graph holds before it, which differs
  between the two ways of building ALBERT.
  """
  base = work / ("hub_vs_ckpt_" + squad)
  base.mkdir()
  if squad == "v1":
    files = (albert_data.write_squad_v1(base / "train.json"),
             albert_data.write_squad_v1(base / "dev.json", seed=5,
                                        num_paragraphs=4, prefix="dev"))
  else:
    files = (albert_data.write_squad_v2(base / "train.json"),
             albert_data.write_squad_v2(base / "dev.json", seed=9,
                                        num_paragraphs=4, prefix="d"))
  extra = ["--dropout_prob=0"] if squad == "v2" else []
  head = base / "head"
  run_seeded(albert_tree, script, *model_args(tiny_data, head),
             *squad_args(head, *files), *extra, "--do_train",
             "--init_checkpoint=%s" % tiny_pretrained["checkpoint"],
             "--learning_rate=0", "--num_train_epochs=0.34", cwd=base)
  head_checkpoint = head / "model.ckpt-1"
  assert (head / "model.ckpt-1.index").exists()

  from_checkpoint = fine_tune(
      albert_tree, script, tiny_data, base / "from_checkpoint", files,
      *extra, "--init_checkpoint=%s" % head_checkpoint)
  from_hub = fine_tune(
      albert_tree, script, tiny_data, base / "from_hub", files,
      *extra, "--init_checkpoint=%s" % head_checkpoint,
      "--albert_hub_module_handle=%s" % hub_module)

  # The two graphs sum in different orders: after training, float32
  # round-off leaves differences of about 1e-5 (measured: 7e-6 on logits of
  # about 0.1); fine-tuning itself moves weights and logits by far more.
  tolerance = 2e-4
  # The fine-tuned weights: ALBERT's under module/ in the hub run.
  weights = from_checkpoint["weights"]
  hub_weights = {re.sub(r"^module/", "", name): value
                 for name, value in from_hub["weights"].items()}
  trained = [n for n in weights
             if (n.startswith("bert/") or n.startswith("cls/")) and
             "adam" not in n]
  assert any(n.startswith("bert/") for n in trained)
  for name in trained:
    np.testing.assert_allclose(hub_weights[name], weights[name], rtol=0,
                               atol=tolerance, err_msg=name)
  pretrained_values = checkpoint_values(tiny_pretrained["checkpoint"])
  moved = max(float(np.max(np.abs(weights[n] - pretrained_values[n])))
              for n in trained if n.startswith("bert/"))
  assert moved > 10 * tolerance, moved

  # The logits of every answer both n-best lists hold.  Answers whose scores
  # nearly tie may change places or fall off the end of a list.
  qids = sorted(from_checkpoint["nbest"])
  assert sorted(from_hub["nbest"]) == qids
  for qid in qids:
    ours = {e["text"]: e for e in from_checkpoint["nbest"][qid]}
    theirs = {e["text"]: e for e in from_hub["nbest"][qid]}
    common = sorted(set(ours) & set(theirs))
    assert len(common) >= len(ours) // 2, (qid, sorted(ours), sorted(theirs))
    for key in ("start_log_prob", "end_log_prob"):
      np.testing.assert_allclose([theirs[t][key] for t in common],
                                 [ours[t][key] for t in common], rtol=0,
                                 atol=tolerance, err_msg=(qid, key))
    # Each run's top answer is a best answer of the other, up to the
    # tolerance.  (With SQuAD 2.0 the prediction may be "no answer" instead,
    # by the null odds compared below.)
    def score(entry):
      return entry["start_log_prob"] + entry["end_log_prob"]
    for top, other in ((from_checkpoint["nbest"][qid][0], theirs),
                       (from_hub["nbest"][qid][0], ours)):
      if top["text"] in other:
        best = max(score(e) for e in other.values())
        assert score(other[top["text"]]) >= best - 2 * tolerance, qid
  if squad == "v2":
    # The answerability logits.
    np.testing.assert_allclose(
        [from_hub["null_odds"][q] for q in qids],
        [from_checkpoint["null_odds"][q] for q in qids], rtol=0,
        atol=tolerance)
  # Eval metrics: equal, but for answers that changed places in a near tie.
  differing = sum(from_hub["predictions"][q] != from_checkpoint["predictions"][q]
                  for q in qids)
  metrics = ("exact_match", "f1") if squad == "v1" else ("exact", "f1")
  for key in metrics:
    assert abs(last(from_hub["results"], key) -
               last(from_checkpoint["results"], key)) <= (
                   100.0 * differing / len(qids) + 1e-6), key
