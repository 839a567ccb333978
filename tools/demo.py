#!/usr/bin/env python3
"""A short demonstration: pretrain a tiny ALBERT on a generated corpus, then fine-tune it on a
generated MRPC-format task it learns, and print the accuracy beside chance.

Runs the tree's scripts as a user would, printing each command first:
sentencepiece model -> create_pretraining_data.py -> run_pretraining.py (train + eval) ->
run_classifier.py (MRPC: train + eval on the dev set).
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
  parser.add_argument("--steps", default=1500, type=int, help="pretraining steps")
  parser.add_argument("--fine-tuning-steps", default=2000, type=int,
                      help="run_classifier.py steps on the MRPC-format task")
  args = parser.parse_args()
  if not (args.tree / "run_pretraining.py").is_file():
    sys.exit(f"error: no patched tree at {args.tree}; build it with `make apply`")
  work = args.workdir
  subprocess.run(["rm", "-rf", str(work)], check=True)
  work.mkdir(parents=True)

  corpus = albert_data.write_corpus(work / "corpus.txt")
  spm_model, spm_vocab = albert_data.train_sentencepiece(corpus, work / "spm")
  vocab_size = sum(1 for _ in open(spm_vocab, encoding="utf-8"))
  config = albert_data.write_albert_config(
      work / "albert_config.json", vocab_size, hidden_size=64, num_layers=2, num_heads=4,
      intermediate_size=128, embedding_size=32)
  print(f"wrote {corpus} (a generated corpus), a sentencepiece model of {vocab_size} pieces "
        f"and a tiny {config.name} (hidden 64, 2 layers)")

  python = sys.executable
  record = work / "pretraining.tfrecord"
  run([python, args.tree / "create_pretraining_data.py", f"--input_file={corpus}",
       f"--output_file={record}", f"--vocab_file={spm_vocab}", f"--spm_model_file={spm_model}",
       "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=5"])
  output_dir = work / "pretraining"
  run([python, args.tree / "run_pretraining.py", f"--input_file={record}",
       f"--output_dir={output_dir}", f"--albert_config_file={config}", "--do_train",
       "--do_eval", "--train_batch_size=32", "--eval_batch_size=32", "--max_seq_length=32",
       "--max_predictions_per_seq=5", "--optimizer=lamb", "--learning_rate=1e-2",
       f"--num_train_steps={args.steps}", f"--num_warmup_steps={args.steps // 10}",
       f"--save_checkpoints_steps={args.steps}", "--max_eval_steps=8"])
  print(f"\nevaluation after {args.steps} steps ({output_dir / 'eval_results.txt'}):")
  for line in (output_dir / "eval_results.txt").read_text().splitlines():
    if " = " in line:  # the metrics, not the lines on saving the best checkpoint
      print(line)
  # Fine-tuning: is the second sentence a paraphrase of the first (same person, action and
  # thing, in another wording)? Balanced labels, so guessing scores 0.5.
  glue = albert_data.write_mrpc(work / "glue", num_train=2000, num_dev=200, seed=1)
  mrpc_dir = work / "mrpc"
  steps = args.fine_tuning_steps
  run([python, args.tree / "run_classifier.py", "--task_name=MRPC", f"--data_dir={glue}",
       f"--output_dir={mrpc_dir}", f"--albert_config_file={config}",
       f"--vocab_file={spm_vocab}", f"--spm_model_file={spm_model}",
       f"--init_checkpoint={output_dir}/model.ckpt-{args.steps}", "--do_lower_case",
       "--do_train", "--do_eval", "--max_seq_length=32", "--train_batch_size=32",
       "--eval_batch_size=40", "--learning_rate=5e-4", f"--train_step={steps}",
       f"--warmup_step={steps // 10}", f"--save_checkpoints_steps={steps}"])
  accuracy = final_accuracy(mrpc_dir / "eval_results.txt", steps)
  (work / "squad").mkdir()
  albert_data.write_squad_v1(work / "squad" / "train.json", seed=2)
  albert_data.write_squad_v1(work / "squad" / "dev.json", num_paragraphs=4, seed=3, prefix="d")
  print(f"\nMRPC-format dev accuracy after {steps} fine-tuning steps: {accuracy:.3f} "
        f"(chance: 0.5; before fine-tuning: see {mrpc_dir / 'eval_results.txt'})")
  print(f"training curves: tensorboard --logdir {work}  (pretraining/ and mrpc/; TensorBoard "
        "comes with TensorFlow: .venv/bin/tensorboard)")
  print(f"checkpoints: {output_dir}/model.ckpt-{args.steps}, {mrpc_dir}; docs/scripts.md shows "
        f"the commands, and run_squad_v1.py on {work}/squad")


def final_accuracy(results, step):
  """eval_accuracy of the evaluation at global_step STEP in run_classifier's eval_results.txt."""
  accuracy = None
  for line in results.read_text().splitlines():
    key, _, value = line.partition(" = ")
    if key == "eval_accuracy":
      accuracy = float(value)
    elif key == "global_step" and int(float(value)) == step and accuracy is not None:
      return accuracy
  sys.exit(f"error: no evaluation of step {step} in {results}")


if __name__ == "__main__":
  main()
