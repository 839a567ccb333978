"""--precision: the arithmetic a training script trains in, on any device.

Importing this module defines the flags; a script applies them by passing its
session config through `precision_session_config` where it builds its
RunConfig.  What each setting means depends on the device the graph runs on:

  fp32  float32 everywhere: no rewrite, the session config passes unchanged
        (None stays None, as upstream has it).
  bf16  CPU: Grappler's oneDNN auto mixed precision
        (auto_mixed_precision_onednn_bfloat16) runs eligible ops in
        bfloat16.  TensorFlow 2.15 does this only with AVX-512 (natively
        with AVX-512 BF16 or AMX, emulated and slow without them) and
        otherwise quietly runs float32, so a CPU without AVX-512 is an error.
        Gaudi: Habana's bridge converts the ops that TF_BF16_CONVERSION
        lists; the variable is the bridge's, so it must be set when the
        script starts (it is read by the bridge, not by the script).
        GPU: an error; TensorFlow 2.15's graph rewrite makes bfloat16 only for
        CPU ops.
  fp16  GPU (compute capability 7.0 or more): Grappler's auto_mixed_precision
        runs eligible ops in float16, and create_optimizer scales the loss
        dynamically (loss_scaling.py).  CPU and Gaudi: an error; TensorFlow
        2.15 only emulates float16 on a CPU (in float32, slower), and Habana's
        conversion is to bfloat16 only.

The device is the first of Gaudi (HPU), GPU and CPU that TensorFlow sees.
Any unsupported combination stops the script with a one-line error instead
of training in float32 unasked.  --use_bf16_amp is a deprecated spelling of
--precision=bf16.
"""

import collections
import os

from absl import flags

from albert.loss_scaling import enable_loss_scaling

PRECISIONS = ("fp32", "bf16", "fp16")

flags.DEFINE_enum(
    "precision", "fp32", PRECISIONS,
    "The arithmetic to train in: fp32; bf16 (mixed float32/bfloat16: oneDNN "
    "auto mixed precision on CPUs with AVX-512, Habana's TF_BF16_CONVERSION "
    "on Gaudi); fp16 (mixed float32/float16 with dynamic loss scaling, on "
    "GPUs). bf16 and fp16 are faster where supported but change the "
    "numerics; an unsupported combination is an error.")

flags.DEFINE_bool(
    "use_bf16_amp", False,
    "Deprecated: the same as --precision=bf16.")

FLAGS = flags.FLAGS

# The rewrite options of tf.compat.v1.ConfigProto().graph_options.
ONEDNN_BF16_REWRITE = "auto_mixed_precision_onednn_bfloat16"
CUDA_FP16_REWRITE = "auto_mixed_precision"

# The variable Habana's bridge reads for its bfloat16 conversion pass: a JSON
# file of op lists or the name of a list built into the bridge; unset or "0"
# leaves the graph in float32.
HABANA_BF16_VARIABLE = "TF_BF16_CONVERSION"

Plan = collections.namedtuple("Plan", ["rewrite", "loss_scaling", "summary"])


class PrecisionError(SystemExit):
  """A precision this device cannot train in; stops with a one-line message."""

  def __init__(self, message):
    super(PrecisionError, self).__init__("error: " + message)


def requested_precision():
  """--precision, with --use_bf16_amp read as --precision=bf16."""
  if not FLAGS.use_bf16_amp:
    return FLAGS.precision
  if FLAGS["precision"].present and FLAGS.precision != "bf16":
    raise PrecisionError(
        "--use_bf16_amp means --precision=bf16 and contradicts "
        "--precision=%s; give --precision alone." % FLAGS.precision)
  return "bf16"


def plan_precision(precision, device, cpu_flags=None, gpu_capability=None,
                   habana_bf16=None):
  """What `precision` takes on `device` ("CPU", "GPU" or "HPU").

  Args:
    precision: one of PRECISIONS.
    device: the device type the graph runs on.
    cpu_flags: the CPU's feature flags (/proc/cpuinfo), or None if unknown.
    gpu_capability: the GPU's compute capability as (major, minor), or None.
    habana_bf16: the value of TF_BF16_CONVERSION, or None when unset.

  Returns:
    A Plan: the rewrite option to turn on (or None), whether to scale the
    loss, and a phrase for the log.

  Raises:
    PrecisionError: the combination is not supported.
  """
  if precision not in PRECISIONS:
    raise PrecisionError("--precision=%s is not one of %s." %
                         (precision, ", ".join(PRECISIONS)))
  habana_converts = habana_bf16 not in (None, "", "0")
  if device == "HPU":
    if precision == "fp16":
      raise PrecisionError(
          "--precision=fp16 is not supported on Gaudi, whose TensorFlow "
          "bridge converts to bfloat16 only; use --precision=bf16.")
    if precision == "bf16" and not habana_converts:
      raise PrecisionError(
          "--precision=bf16 on Gaudi needs Habana's op list: start the "
          "script with %s set to a JSON op-list file or a list built into "
          "Habana's bridge (see README, Running on Gaudi)." %
          HABANA_BF16_VARIABLE)
    if precision == "fp32" and habana_converts:
      raise PrecisionError(
          "%s=%s makes Habana's bridge train in bfloat16, which contradicts "
          "--precision=fp32; pass --precision=bf16 or unset %s." %
          (HABANA_BF16_VARIABLE, habana_bf16, HABANA_BF16_VARIABLE))
    if precision == "bf16":
      return Plan(None, False, "bf16 on Gaudi: Habana's conversion, %s=%s" %
                  (HABANA_BF16_VARIABLE, habana_bf16))
    return Plan(None, False, "fp32 on Gaudi")
  if precision == "fp32":
    return Plan(None, False, "fp32 on %s" % device)
  if device == "GPU":
    if precision == "bf16":
      raise PrecisionError(
          "--precision=bf16 is not supported on GPUs: TensorFlow 2.15's "
          "graph rewrite makes bfloat16 only for CPU ops; use "
          "--precision=fp16.")
    if gpu_capability is not None and tuple(gpu_capability) < (7, 0):
      raise PrecisionError(
          "--precision=fp16 needs a GPU of compute capability 7.0 or more "
          "(this one has %d.%d), on which TensorFlow's auto mixed precision "
          "runs; use --precision=fp32." % tuple(gpu_capability))
    return Plan(CUDA_FP16_REWRITE, True,
                "fp16 on GPU: %s with dynamic loss scaling" % CUDA_FP16_REWRITE)
  if precision == "fp16":
    raise PrecisionError(
        "--precision=fp16 is not supported on a CPU (TensorFlow 2.15 only "
        "emulates float16 there, in float32); use --precision=bf16 on a CPU "
        "with AVX-512, or fp16 on a GPU.")
  # bf16 on the CPU.
  if cpu_flags is not None and "avx512f" not in cpu_flags:
    raise PrecisionError(
        "--precision=bf16 on a CPU needs AVX-512, which this CPU lacks "
        "(TensorFlow's oneDNN bfloat16 rewrite would quietly run float32); "
        "use --precision=fp32.")
  native = cpu_flags is None or bool(
      {"avx512_bf16", "amx_bf16"} & set(cpu_flags))
  return Plan(ONEDNN_BF16_REWRITE, False,
              "bf16 on CPU: %s%s" % (
                  ONEDNN_BF16_REWRITE,
                  "" if native else " (emulated: this CPU has neither "
                  "AVX-512 BF16 nor AMX, and may train slower than fp32)"))


def cpu_flags():
  """The CPU's feature flags from /proc/cpuinfo, or None where there is none."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          return line.split(":", 1)[1].split()
  except OSError:
    pass
  return None


def accelerator():
  """The device type the graph runs on: "HPU", "GPU" or "CPU".

  Habana's module must be loaded first (the scripts load it at the start of
  main) for TensorFlow to see an HPU.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for device_type in ("HPU", "GPU"):
    if tf.config.list_physical_devices(device_type):
      return device_type
  return "CPU"


def _gpu_capability():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = tf.config.list_physical_devices("GPU")[0]
  return tf.config.experimental.get_device_details(gpu).get(
      "compute_capability")


def with_rewrite(config, rewrite):
  """A copy of `config` (or of a new one) with one rewrite option on."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
  if config is None:
    # What the estimator's RunConfig makes when it is given no config.
    new_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
  else:
    new_config = tf.compat.v1.ConfigProto()
    new_config.CopyFrom(config)
  setattr(new_config.graph_options.rewrite_options, rewrite,
          rewriter_config_pb2.RewriterConfig.ON)
  return new_config


def precision_session_config(config=None):
  """`config` (a ConfigProto or None) set up for --precision on this device.

  fp32 returns `config` itself; bf16 and fp16 return a copy with their rewrite
  on (Gaudi's bf16 needs none), and fp16 turns on loss scaling in
  create_optimizer.  Logs the choice in one line; raises PrecisionError for
  an unsupported combination.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  precision = requested_precision()
  if FLAGS.use_bf16_amp:
    tf.compat.v1.logging.warning(
        "--use_bf16_amp is deprecated; use --precision=bf16.")
  device = accelerator()
  plan = plan_precision(
      precision, device, cpu_flags=cpu_flags(),
      gpu_capability=_gpu_capability() if device == "GPU" else None,
      habana_bf16=os.environ.get(HABANA_BF16_VARIABLE))
  tf.compat.v1.logging.info("Precision: %s", plan.summary)
  if plan.loss_scaling:
    enable_loss_scaling()
  if plan.rewrite is None:
    return config
  return with_rewrite(config, plan.rewrite)
