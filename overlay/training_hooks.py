"""SessionRunHooks the training scripts add: throughput and Synapse logging."""

import importlib
import json
import os
import sys
import time

from albert.horovod_helpers import hvd_rank, hvd_size
import tensorflow as tf

_logging = tf.compat.v1.logging

# The steps Habana's change list traces with HABANA_SYNAPSE_LOGGER=range.
SYNAPSE_STEPS = range(670, 680)


def training_hooks(script, examples_per_step, output_dir):
  """The hooks every training script trains with, besides Horovod's broadcast.

  A PerfLoggingHook for this worker (examples_per_step: its own batch), which
  appends the run's figures to OUTPUT_DIR/perf.jsonl (output_dir: this
  worker's output directory), and, with HABANA_SYNAPSE_LOGGER=range, a
  SynapseLoggerHook tracing SYNAPSE_STEPS.
  """
  hooks = []
  if os.environ.get("HABANA_SYNAPSE_LOGGER", "False").lower() == "range":
    hooks.append(SynapseLoggerHook(list(SYNAPSE_STEPS), False, hvd_rank()))
  hooks.append(PerfLoggingHook(
      examples_per_step, json_path=os.path.join(output_dir, "perf.jsonl"),
      extra={"script": script, "rank": hvd_rank(), "size": hvd_size()}))
  return hooks


class PerfLoggingHook(tf.compat.v1.train.SessionRunHook):
  """Logs step times and examples/second; writes one JSON summary per run.

  A step's time runs from the end of the step before it (the first: from its
  own start) to its end, so the step times add up to the wall time of the
  run, other hooks' work such as checkpointing included.  The summary divides
  total examples by total time, once over all steps and once without the
  first, which carries graph optimisation and warm-up; the mean of per-step
  rates would overweight fast steps.  A run without steps gives nulls.
  """

  def __init__(self, examples_per_step, json_path=None, log_every=1,
               name="train", extra=None):
    """examples_per_step: examples one session.run of this process trains on.

    json_path: file that gets the summary appended as one JSON line; its
      directory is made if it does not exist.
    extra: dict of further fields for the JSON line (e.g. rank, size).
    """
    self._examples_per_step = int(examples_per_step)
    self._json_path = json_path
    self._log_every = max(1, int(log_every))
    self._name = name
    self._extra = dict(extra or {})
    self._durations = []
    self._last = None

  def begin(self):
    self._durations = []
    self._last = None

  def before_run(self, run_context):
    if self._last is None:
      self._last = time.time()

  def after_run(self, run_context, run_values):
    now = time.time()
    duration = now - self._last
    self._last = now
    self._durations.append(duration)
    step = len(self._durations)
    if step % self._log_every == 0:
      _logging.info(
          "%s step %d: %.4f s, %.2f examples/sec", self._name, step, duration,
          self._examples_per_step / duration if duration > 0 else float("inf"))

  def summary(self):
    """The totals of the steps seen so far, as written to the JSON line."""
    steps = len(self._durations)
    record = {"name": self._name, "steps": steps,
              "examples_per_step": self._examples_per_step}
    for suffix, durations in (("", self._durations),
                              ("_without_first", self._durations[1:])):
      examples = self._examples_per_step * len(durations)
      total = sum(durations)
      record["total_examples" + suffix] = examples
      record["total_time_s" + suffix] = total
      record["examples_per_sec" + suffix] = (
          examples / total if durations and total > 0 else None)
    record.update(self._extra)
    return record

  def end(self, session):
    record = self.summary()
    _logging.info(
        "%s: %d steps, %d examples in %.3f s: %s examples/sec "
        "(without the first step: %s)", self._name, record["steps"],
        record["total_examples"], record["total_time_s"],
        record["examples_per_sec"], record["examples_per_sec_without_first"])
    if self._json_path:
      if os.path.dirname(self._json_path):
        tf.io.gfile.makedirs(os.path.dirname(self._json_path))
      with tf.io.gfile.GFile(self._json_path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def _import_synapse_logger():
  """Habana's py_synapse_logger module, or None where it is not installed."""
  try:
    import habana_frameworks.tensorflow as htf  # pylint: disable=g-import-not-at-top
    lib_dir = htf.sysconfig.get_lib_dir()
  except (ImportError, AttributeError):
    return None
  if lib_dir not in sys.path:
    sys.path.insert(0, lib_dir)
  try:
    return importlib.import_module("py_synapse_logger")
  except ImportError:
    return None


class SynapseLoggerHook(tf.compat.v1.train.SessionRunHook):
  """Captures a Synapse (Habana runtime) trace for the given steps.

  Steps are counted from 0 in each run of this hook.  Active only when
  HABANA_SYNAPSE_LOGGER=range and Habana's synapse logger is installed;
  otherwise it logs a warning once and does nothing.
  """

  def __init__(self, steps_to_log, profile_hw=False, rank=0):
    self._steps = set(steps_to_log)
    self._profile_hw = profile_hw
    self._rank = rank
    self._logger = None
    self._warned = False
    self._step = 0
    self._capturing = False

  def _inactive_reason(self):
    if os.environ.get("HABANA_SYNAPSE_LOGGER", "").lower() != "range":
      return "HABANA_SYNAPSE_LOGGER is not 'range'"
    self._logger = _import_synapse_logger()
    if self._logger is None:
      return "Habana's synapse logger (py_synapse_logger) is not installed"
    return None

  def begin(self):
    self._step = 0
    self._capturing = False
    if self._logger is not None:
      return
    reason = self._inactive_reason()
    if reason and not self._warned:
      self._warned = True
      _logging.warning("SynapseLoggerHook does nothing: %s.", reason)
    if self._logger is not None:
      self._logger.command("disable")

  def _start(self):
    self._logger.command("file_name=worker_%d_step_%d.local.synapse_log" %
                         (self._rank, self._step))
    self._logger.command("category_mask=0x3")
    self._logger.command("restart")
    if self._profile_hw and self._rank == 0:
      self._logger.start_hw_profile()
    self._capturing = True

  def _stop(self):
    if self._profile_hw and self._rank == 0:
      self._logger.stop_hw_profile()
    self._logger.command("disable")
    self._capturing = False

  def before_run(self, run_context):
    if self._logger is not None and not self._capturing and (
        self._step in self._steps):
      self._start()

  def after_run(self, run_context, run_values):
    self._step += 1
    if self._capturing and self._step not in self._steps:
      self._stop()

  def end(self, session):
    if self._capturing:
      self._stop()
