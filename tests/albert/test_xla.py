"""--use_xla: the training scripts train with XLA's JIT compiling clusters of the graph.

run_pretraining.py and run_classifier.py train the tiny model for a few steps, as users
run them. XLA's device compiler logs a line the first time it compiles a cluster: with
--use_xla it is in the log and the run trains to the end; without it, it is not.
"""
import math

import albert_data
import pytest

from .tiny_albert import SEQ, MAX_PRED, last, model_args, read_results, run, script_env

COMPILED = "Compiled cluster using XLA"


def _env():
  env = script_env()
  env.pop("TF_XLA_FLAGS", None)
  # INFO lines: XLA's "Compiled cluster" line is one.
  env.update(TF_CPP_MIN_LOG_LEVEL="0", OMP_NUM_THREADS="1",
             TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
  return env


def _pretrain(tree, tiny_data, out, *extra):
  return run(tree, "run_pretraining.py",
             "--input_file=%s" % tiny_data["record"], "--output_dir=%s" % out,
             "--albert_config_file=%s" % tiny_data["config"], "--do_train",
             "--do_eval", "--train_batch_size=8", "--eval_batch_size=8",
             "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % MAX_PRED,
             "--num_train_steps=4", "--num_warmup_steps=1",
             "--save_checkpoints_steps=4", "--iterations_per_loop=4",
             "--max_eval_steps=2", *extra, cwd=out.parent, env=_env())


@pytest.mark.long
def test_pretraining_compiles_clusters_with_use_xla(albert_tree, tiny_data, tmp_path):
  with_xla = _pretrain(albert_tree, tiny_data, tmp_path / "xla", "--use_xla")
  log = with_xla.stderr
  assert COMPILED in log, log[-4000:]
  assert "XLA: just-in-time compilation, level ON_1" in log
  assert "global_step = 4" in log
  loss = last(read_results(tmp_path / "xla" / "eval_results.txt"), "loss")
  assert math.isfinite(loss) and loss > 0

  without = _pretrain(albert_tree, tiny_data, tmp_path / "plain")
  assert COMPILED not in without.stderr
  assert "XLA: just-in-time" not in without.stderr


def test_classifier_trains_with_use_xla(albert_tree, tiny_data, tmp_path):
  out = tmp_path / "mrpc"
  data_dir = albert_data.write_mrpc(tmp_path / "glue")
  proc = run(albert_tree, "run_classifier.py", "--task_name=MRPC",
             "--data_dir=%s" % data_dir, "--do_lower_case",
             *model_args(tiny_data, out), "--do_train", "--do_eval",
             "--max_seq_length=%d" % SEQ, "--train_batch_size=8",
             "--eval_batch_size=8", "--train_step=4", "--warmup_step=1",
             "--save_checkpoints_steps=4", "--use_xla", cwd=tmp_path,
             env=_env())
  assert COMPILED in proc.stderr, proc.stderr[-4000:]
  results = read_results(out / "eval_results.txt")
  assert last(results, "global_step") == 4
  assert 0 <= last(results, "eval_accuracy") <= 1
