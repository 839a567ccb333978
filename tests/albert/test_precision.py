"""precision.py and loss_scaling.py: the rules per device, the session config
they make (alone and with ScopedAllocator's), and dynamic loss scaling around
create_optimizer's own optimizers.

The scripts running with --precision are in test_pretraining_and_fine_tuning.py."""
import json
import os
import subprocess
import sys


from .horovod_runs import assert_loss_scaling_skips_overflows, needs_horovodrun
from .tree import cpu_has_avx512


def _env(tree, **extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_DISABLE_SCOPED_ALLOCATOR", "TF_BF16_CONVERSION")}
  env.update(PYTHONPATH=str(tree), OMP_NUM_THREADS="1",
             TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
             TF_CPP_MIN_LOG_LEVEL="3", **extra)
  return env


def _run(tree, code, *args, **extra):
  proc = subprocess.run([sys.executable, "-c", code, *args],
                        env=_env(tree, **extra), capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  results = [json.loads(line.split("RESULT ", 1)[1])
             for line in proc.stdout.splitlines() if "RESULT " in line]
  assert len(results) == 1, proc.stdout
  return results[0]


PLAN = """
import json, sys
from albert.precision import plan_precision
out = []
for precision, device, kwargs in json.loads(sys.argv[1]):
  try:
    out.append(list(plan_precision(precision, device, **kwargs)))
  except SystemExit as e:
    out.append(str(e))
print("RESULT " + json.dumps(out))
"""

NATIVE_BF16 = ["fpu", "avx2", "avx512f", "avx512_bf16"]
AMX = ["fpu", "avx2", "avx512f", "amx_tile", "amx_bf16"]
AVX512_ONLY = ["fpu", "avx2", "avx512f"]
AVX2_ONLY = ["fpu", "avx2", "fma"]
ONEDNN = "auto_mixed_precision_onednn_bfloat16"

FP16_ON_CPU = ("error: --precision=fp16 is not supported on a CPU (TensorFlow "
               "2.15 only emulates float16 there, in float32); use "
               "--precision=bf16 on a CPU with AVX-512, or fp16 on a GPU.")

# (precision, device, plan_precision's keyword arguments) -> the Plan as a
# list [rewrite, loss_scaling, summary], or the error message.
MATRIX = [
    ("fp32", "CPU", {"cpu_flags": AVX2_ONLY}, [None, False, "fp32 on CPU"]),
    ("fp32", "CPU", {"cpu_flags": NATIVE_BF16}, [None, False, "fp32 on CPU"]),
    ("bf16", "CPU", {"cpu_flags": NATIVE_BF16},
     [ONEDNN, False, "bf16 on CPU: " + ONEDNN]),
    ("bf16", "CPU", {"cpu_flags": AMX},
     [ONEDNN, False, "bf16 on CPU: " + ONEDNN]),
    ("bf16", "CPU", {"cpu_flags": None},
     [ONEDNN, False, "bf16 on CPU: " + ONEDNN]),
    ("bf16", "CPU", {"cpu_flags": AVX512_ONLY},
     [ONEDNN, False, "bf16 on CPU: " + ONEDNN + " (emulated: this CPU has "
      "neither AVX-512 BF16 nor AMX, and may train slower than fp32)"]),
    ("bf16", "CPU", {"cpu_flags": AVX2_ONLY},
     "error: --precision=bf16 on a CPU needs AVX-512, which this CPU lacks "
     "(TensorFlow's oneDNN bfloat16 rewrite would quietly run float32); use "
     "--precision=fp32."),
    ("fp16", "CPU", {"cpu_flags": NATIVE_BF16}, FP16_ON_CPU),
    ("fp16", "CPU", {"cpu_flags": AVX2_ONLY}, FP16_ON_CPU),
    ("fp32", "GPU", {"gpu_capability": [8, 0]}, [None, False, "fp32 on GPU"]),
    ("fp16", "GPU", {"gpu_capability": [7, 0]},
     ["auto_mixed_precision", True,
      "fp16 on GPU: auto_mixed_precision with dynamic loss scaling"]),
    ("fp16", "GPU", {"gpu_capability": [6, 1]},
     "error: --precision=fp16 needs a GPU of compute capability 7.0 or more "
     "(this one has 6.1), on which TensorFlow's auto mixed precision runs; "
     "use --precision=fp32."),
    ("bf16", "GPU", {"gpu_capability": [8, 0]},
     "error: --precision=bf16 is not supported on GPUs: TensorFlow 2.15's "
     "graph rewrite makes bfloat16 only for CPU ops; use --precision=fp16."),
    ("fp32", "HPU", {}, [None, False, "fp32 on Gaudi"]),
    ("fp32", "HPU", {"habana_bf16": "0"}, [None, False, "fp32 on Gaudi"]),
    ("bf16", "HPU", {"habana_bf16": "/cfg/albert.json"},
     [None, False, "bf16 on Gaudi: Habana's conversion, "
      "TF_BF16_CONVERSION=/cfg/albert.json"]),
    ("bf16", "HPU", {"habana_bf16": "full"},
     [None, False, "bf16 on Gaudi: Habana's conversion, "
      "TF_BF16_CONVERSION=full"]),
    ("bf16", "HPU", {},
     "error: --precision=bf16 on Gaudi needs Habana's op list: start the "
     "script with TF_BF16_CONVERSION set to a JSON op-list file or a list "
     "built into Habana's bridge (see README, Running on Gaudi)."),
    ("bf16", "HPU", {"habana_bf16": "0"},
     "error: --precision=bf16 on Gaudi needs Habana's op list: start the "
     "script with TF_BF16_CONVERSION set to a JSON op-list file or a list "
     "built into Habana's bridge (see README, Running on Gaudi)."),
    ("fp32", "HPU", {"habana_bf16": "full"},
     "error: TF_BF16_CONVERSION=full makes Habana's bridge train in "
     "bfloat16, which contradicts --precision=fp32; pass --precision=bf16 or "
     "unset TF_BF16_CONVERSION."),
    ("fp16", "HPU", {"habana_bf16": "full"},
     "error: --precision=fp16 is not supported on Gaudi, whose TensorFlow "
     "bridge converts to bfloat16 only; use --precision=bf16."),
]


def test_plan_per_device_and_precision(albert_tree):
  got = _run(albert_tree, PLAN, json.dumps([case[:3] for case in MATRIX]))
  for case, result in zip(MATRIX, got):
    assert result == case[3], case[:3]


# Parses each set of flags as a script does, then prints what
# precision_session_config makes of None and of ScopedAllocator's config.
CONFIG = """
import json, sys
from absl import flags
from albert import loss_scaling
from albert.precision import precision_session_config
from albert.scoped_allocator import scoped_allocator_session_config

def describe(config):
  if config is None:
    return None
  options = config.graph_options.rewrite_options
  return {"soft_placement": config.allow_soft_placement,
          "onednn_bf16": options.auto_mixed_precision_onednn_bfloat16,
          "cuda_fp16": options.auto_mixed_precision,
          "scoped_allocator": options.scoped_allocator_optimization,
          "enable_op": list(options.scoped_allocator_opts.enable_op)}

results = []
for args in json.loads(sys.argv[1]):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["script"] + args)
  loss_scaling._enabled = False  # a fresh process per script run
  try:
    scoped = scoped_allocator_session_config()
    before = scoped.SerializeToString()
    combined = precision_session_config(scoped)
    results.append({"alone": describe(precision_session_config(None)),
                    "combined": describe(combined),
                    "same_object": combined is scoped,
                    "scoped_unchanged": scoped.SerializeToString() == before,
                    "loss_scaling": loss_scaling.loss_scaling_enabled()})
  except SystemExit as e:
    results.append({"error": str(e)})
print("RESULT " + json.dumps(results))
"""

SCOPED_ONLY = {"soft_placement": False, "onednn_bf16": 0, "cuda_fp16": 0,
               "scoped_allocator": 1, "enable_op": ["HorovodAllreduce"]}
FP32 = {"alone": None, "combined": SCOPED_ONLY, "same_object": True,
        "scoped_unchanged": True, "loss_scaling": False}
BF16 = {"alone": {"soft_placement": True, "onednn_bf16": 1, "cuda_fp16": 0,
                  "scoped_allocator": 0, "enable_op": []},
        "combined": dict(SCOPED_ONLY, onednn_bf16=1), "same_object": False,
        "scoped_unchanged": True, "loss_scaling": False}

# On this machine's CPU (no GPU, no Gaudi): flags -> what the scripts get.
CONFIG_CASES = [
    ([], FP32),
    (["--precision=fp32"], FP32),
    (["--precision=fp16"], {"error": FP16_ON_CPU}),
    (["--use_bf16_amp", "--precision=fp32"], {
        "error": "error: --use_bf16_amp means --precision=bf16 and "
                 "contradicts --precision=fp32; give --precision alone."}),
]
if cpu_has_avx512():
  CONFIG_CASES += [(["--precision=bf16"], BF16), (["--use_bf16_amp"], BF16),
                   (["--use_bf16_amp", "--precision=bf16"], BF16)]


def test_session_config_on_this_cpu(albert_tree):
  got = _run(albert_tree, CONFIG, json.dumps([c[0] for c in CONFIG_CASES]))
  for (args, expected), result in zip(CONFIG_CASES, got):
    assert result == expected, args


# create_optimizer with loss scaling on, as --precision=fp16 sets it, on two
@needs_horovodrun
def test_dynamic_loss_scaling_around_create_optimizer(albert_tree):
  assert_loss_scaling_skips_overflows(albert_tree, 1)
