"""`make bench`: what the tool costs, and how fast the patched ALBERT trains next to its peer.

Run it from the checkout with the project's venv: `.venv/bin/python -m bench` (what `make bench`
does); bench/README.md says what each figure means. The modules:

  __main__  the run: options, the parts in order, the table and bench/results.json
  tool      part 1: tools/apply_patches.py on a temporary copy, next to clone + tf_upgrade_v2
  measure   parts 2-4 as seen from here: the tree, the training runs, the peer, the matmul peak
  train     the TensorFlow side, run in processes of its own (inputs, matmul peak, training)
  peer      HuggingFace transformers' ALBERT on PyTorch, run in build/bench-venv
  flops     model FLOPs of one example of each task
  data      part 6: create_pretraining_data.py --output_dir on 1 and 2 workers, upstream's baseline
  proc      running and logging subprocesses, and what machine this is
  report    units and targets, the printed tables and the results file

The benchmark uses the tool's own git layer, so tools/ goes on the import path here, once.
"""
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
TOOLS = PROJECT / "tools"
BENCH = PROJECT / "bench"
# The offline bundle of upstream beside this checkout, where there is one: the upstream the
# benchmark builds from unless ALBERT_UPSTREAM names another (the Makefile's default too).
BUNDLE = PROJECT.parent / "shared" / "upstream" / "google-research-albert.bundle"

if str(TOOLS) not in sys.path:
  sys.path.insert(0, str(TOOLS))
