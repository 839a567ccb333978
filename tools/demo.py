#!/usr/bin/env python3
"""A short demonstration: pretrain the patched ALBERT for a few steps on a tiny generated corpus.

Runs the tree's scripts as a user would, printing each command first:
sentencepiece model -> create_pretraining_data.py -> run_pretraining.py (train + eval).
"""
import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import albert_data

PROJECT = Path(__file__).resolve().parent.parent


def run(cmd):
  print("\n$ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
  start = time.monotonic()
  proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
  if proc.returncode != 0:
    sys.exit(proc.stdout[-6000:] + f"\nerror: {Path(cmd[1]).name} exited {proc.returncode} "
             "(its output is above)")
  print(f"  ({time.monotonic() - start:.0f}s)", flush=True)
  return proc.stdout


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--tree", default=PROJECT / "build" / "albert", type=Path,
                      help="the patched tree (make apply builds it)")
  parser.add_argument("--workdir", default=PROJECT / "build" / "demo", type=Path,
                      help="where the corpus, records and checkpoints go (replaced)")
  parser.add_argument("--steps", default=100, type=int, help="pretraining steps")
  args = parser.parse_args()
  if not (args.tree / "run_pretraining.py").is_file():
    sys.exit(f"error: no patched tree at {args.tree}; build it with `make apply`")
  work = args.workdir
  subprocess.run(["rm", "-rf", str(work)], check=True)
  work.mkdir(parents=True)

  corpus = albert_data.write_corpus(work / "corpus.txt")
  spm_model, spm_vocab = albert_data.train_sentencepiece(corpus, work / "spm")
  vocab_size = sum(1 for _ in open(spm_vocab, encoding="utf-8"))
  config = albert_data.write_albert_config(work / "albert_config.json", vocab_size)
  print(f"wrote {corpus} (a generated corpus), a sentencepiece model of {vocab_size} pieces "
        f"and a tiny {config.name} (hidden 32, 2 layers)")

  python = sys.executable
  record = work / "pretraining.tfrecord"
  run([python, args.tree / "create_pretraining_data.py", f"--input_file={corpus}",
       f"--output_file={record}", f"--vocab_file={spm_vocab}", f"--spm_model_file={spm_model}",
       "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=3"])
  output_dir = work / "pretraining"
  run([python, args.tree / "run_pretraining.py", f"--input_file={record}",
       f"--output_dir={output_dir}", f"--albert_config_file={config}", "--do_train",
       "--do_eval", "--train_batch_size=16", "--eval_batch_size=16", "--max_seq_length=32",
       "--max_predictions_per_seq=5", "--optimizer=lamb", "--learning_rate=5e-3",
       f"--num_train_steps={args.steps}", "--num_warmup_steps=10",
       f"--save_checkpoints_steps={args.steps}", "--max_eval_steps=8"])
  print(f"\nevaluation after {args.steps} steps ({output_dir / 'eval_results.txt'}):")
  print((output_dir / "eval_results.txt").read_text().rstrip())
  albert_data.write_mrpc(work / "glue")
  (work / "squad").mkdir()
  albert_data.write_squad_v1(work / "squad" / "train.json", seed=2)
  albert_data.write_squad_v1(work / "squad" / "dev.json", num_paragraphs=4, seed=3, prefix="d")
  print(f"\ncheckpoint: {output_dir}/model.ckpt-{args.steps}; README.md shows how to fine-tune "
        f"from it with run_classifier.py on {work}/glue/MRPC and run_squad_v1.py on {work}/squad")


if __name__ == "__main__":
  main()
