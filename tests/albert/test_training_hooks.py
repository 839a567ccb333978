"""training_hooks.py: PerfLoggingHook totals and JSON line; SynapseLoggerHook.

The hooks run in fresh interpreters with the real TensorFlow: once in a
MonitoredSession, and once driven step by step with a scripted clock so the
expected numbers are exact.
"""
import json
import os
import subprocess
import sys

import pytest

from .test_habana_loader import write_fake_habana


def _run(tree, code, *args, extra_path=(), env=None):
  full_env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="0",
                  PYTHONPATH=os.pathsep.join([str(tree),
                                              *map(str, extra_path)]))
  full_env.pop("HABANA_SYNAPSE_LOGGER", None)
  full_env.update(env or {})
  proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                        env=full_env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc


IN_SESSION = """
import sys, time
import tensorflow as tf
from albert.training_hooks import PerfLoggingHook
tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
tf.compat.v1.disable_eager_execution()
steps, path = int(sys.argv[1]), sys.argv[2]
step = tf.compat.v1.assign_add(tf.compat.v1.train.get_or_create_global_step(), 1)
hook = PerfLoggingHook(examples_per_step=8, json_path=path,
                       extra={"rank": 0, "size": 1})
with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as session:
  for _ in range(steps):
    session.run(step)
    time.sleep(0.05)
"""


def test_perf_hook_in_a_session_writes_one_json_line_per_run(albert_tree,
                                                             tmp_path):
  path = tmp_path / "perf.jsonl"
  first = _run(albert_tree, IN_SESSION, 5, path)
  _run(albert_tree, IN_SESSION, 5, path)
  lines = path.read_text().splitlines()
  assert len(lines) == 2
  record = json.loads(lines[0])
  assert record["steps"] == 5 and record["examples_per_step"] == 8
  assert record["total_examples"] == 40
  assert record["total_examples_without_first"] == 32
  assert record["rank"] == 0 and record["size"] == 1
  # Steps 2..5 each include the 0.05 s pause after the step before them.
  assert record["total_time_s_without_first"] >= 4 * 0.05
  assert record["total_time_s"] > record["total_time_s_without_first"]
  assert record["examples_per_sec"] == pytest.approx(
      40 / record["total_time_s"])
  assert record["examples_per_sec_without_first"] == pytest.approx(
      32 / record["total_time_s_without_first"])
  for n in range(1, 6):
    assert "train step %d: " % n in first.stderr
  assert "examples/sec (without the first step:" in first.stderr


def test_perf_hook_with_no_steps_does_not_fail(albert_tree, tmp_path):
  path = tmp_path / "perf.jsonl"
  _run(albert_tree, IN_SESSION, 0, path)
  record = json.loads(path.read_text())
  assert record["steps"] == 0 and record["total_examples"] == 0
  assert record["examples_per_sec"] is None
  assert record["examples_per_sec_without_first"] is None


SCRIPTED_CLOCK = """
import json, sys
import albert.training_hooks as th
ticks = iter([100.0, 102.0, 103.0, 104.0])   # steps of 2 s, 1 s, 1 s

class Clock(object):
  @staticmethod
  def time():
    return next(ticks)

th.time = Clock
hook = th.PerfLoggingHook(examples_per_step=10, json_path=sys.argv[1])
hook.begin()
for _ in range(3):
  hook.before_run(None)
  hook.after_run(None, None)
hook.end(None)
"""


def test_perf_hook_rate_is_total_examples_over_total_time(albert_tree,
                                                          tmp_path):
  path = tmp_path / "perf.jsonl"
  _run(albert_tree, SCRIPTED_CLOCK, path)
  record = json.loads(path.read_text())
  assert record["total_examples"] == 30
  assert record["total_time_s"] == pytest.approx(4.0)
  # 30 / 4, not the mean of the step rates (5 + 10 + 10) / 3.
  assert record["examples_per_sec"] == pytest.approx(7.5)
  assert record["total_time_s_without_first"] == pytest.approx(2.0)
  assert record["examples_per_sec_without_first"] == pytest.approx(10.0)


SYNAPSE = """
from albert.training_hooks import SynapseLoggerHook
hook = SynapseLoggerHook([2, 3], profile_hw=True)
for run in range(2):
  hook.begin()
  for _ in range(6):
    hook.before_run(None)
    hook.after_run(None, None)
  hook.end(None)
print("OK")
"""


@pytest.mark.parametrize("env, reason", [
    ({}, "HABANA_SYNAPSE_LOGGER is not 'range'"),
    ({"HABANA_SYNAPSE_LOGGER": "range"},
     "Habana's synapse logger (py_synapse_logger) is not installed"),
])
def test_synapse_hook_without_logger_warns_once_and_does_nothing(
    albert_tree, env, reason):
  proc = _run(albert_tree, SYNAPSE, env=env)
  assert "OK" in proc.stdout
  assert proc.stderr.count("SynapseLoggerHook does nothing: " + reason) == 1


def test_synapse_hook_captures_the_chosen_steps(albert_tree, tmp_path):
  log = tmp_path / "calls.log"
  write_fake_habana(tmp_path / "fake", log)
  proc = _run(albert_tree, SYNAPSE, extra_path=[tmp_path / "fake"],
              env={"HABANA_SYNAPSE_LOGGER": "range"})
  assert "does nothing" not in proc.stderr
  capture = ["command file_name=worker_0_step_2.local.synapse_log",
             "command category_mask=0x3", "command restart",
             "start_hw_profile", "stop_hw_profile", "command disable"]
  assert log.read_text().splitlines() == (["command disable"] + capture * 2)
