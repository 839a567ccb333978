#!/usr/bin/env python3
"""The peer for `python -m bench`: HuggingFace transformers' ALBERT on PyTorch (CPU).

Runs in the benchmark's own venv (build/bench-venv: torch + transformers), never in the
project's. One training step = forward, the task's loss, backward, AdamW update, on random
token ids with the shapes given. The task picks the model:

  pretrain    AlbertForPreTraining (masked-LM + sentence-order loss)
  squad       AlbertForQuestionAnswering (start and end positions)
  classifier  AlbertForSequenceClassification (2 labels)

--precision=bf16 runs forward and loss under torch.autocast(device_type="cpu",
dtype=torch.bfloat16), PyTorch's mixed precision for CPUs; --compile trains the
torch.compile'd model (its compilation happens in the first steps, which the caller leaves
out of the timing). --predict times forward passes instead (model.eval(),
torch.inference_mode(), the same autocast and --compile). Writes one JSON object to --json.

  peer.py --json PATH --task T --precision P [--compile] [--predict] --batch B --seq S
          --preds P --steps N --threads T
  peer.py --peak --json PATH --precision P --n N --reps R --threads T
  peer.py --selftest   (imports torch and transformers and trains a tiny model one step)
"""
import argparse
import contextlib
import json
import resource
import sys
import time

TASKS = ("pretrain", "squad", "classifier")


def albert_base(vocab=30000, tiny=False):
  from transformers import AlbertConfig
  if tiny:
    return AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64)
  # ALBERT-base (albert_base_v2's albert_config.json); ALBERT's "gelu" is the tanh
  # approximation, which transformers calls "gelu_new"; no dropout in either benchmark.
  return AlbertConfig(vocab_size=vocab, embedding_size=128, hidden_size=768,
                      num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                      hidden_act="gelu_new", hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0,
                      max_position_embeddings=512, type_vocab_size=2,
                      initializer_range=0.02)


def make_model(task, config):
  import transformers
  if task == "pretrain":
    return transformers.AlbertForPreTraining(config)
  if task == "squad":
    return transformers.AlbertForQuestionAnswering(config)
  config.num_labels = 2
  return transformers.AlbertForSequenceClassification(config)


def make_batch(torch, task, batch, seq, preds, vocab, generator):
  """Inputs and labels of one batch: a pair of segments filling the sequence."""
  inputs = dict(input_ids=torch.randint(5, vocab, (batch, seq), generator=generator),
                attention_mask=torch.ones(batch, seq, dtype=torch.long),
                token_type_ids=torch.zeros(batch, seq, dtype=torch.long))
  inputs["token_type_ids"][:, seq // 2:] = 1
  if task == "pretrain":
    labels = torch.full((batch, seq), -100, dtype=torch.long)
    for row in range(batch):
      positions = torch.randperm(seq - 1, generator=generator)[:preds] + 1
      labels[row, positions] = inputs["input_ids"][row, positions]
    inputs.update(labels=labels,
                  sentence_order_label=torch.randint(0, 2, (batch,), generator=generator))
  elif task == "squad":
    start = torch.randint(seq // 2, seq - 4, (batch,), generator=generator)
    inputs.update(start_positions=start, end_positions=start + 3)
  else:
    inputs.update(labels=torch.randint(0, 2, (batch,), generator=generator))
  return inputs


def precision_context(torch, precision):
  if precision == "bf16":
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
  return contextlib.nullcontext()


def set_up(torch, args):
  """Threads and seed, then the task's model, the callable that runs it (compiled with
  --compile), the sequence length it takes and one batch of inputs."""
  torch.set_num_threads(args.threads)
  torch.set_num_interop_threads(max(1, args.interop_threads))
  torch.manual_seed(0)
  config = albert_base(args.vocab, tiny=args.selftest)
  model = make_model(args.task, config)
  forward = torch.compile(model) if args.compile else model
  generator = torch.Generator().manual_seed(0)
  seq = min(args.seq, config.max_position_embeddings)
  batch = make_batch(torch, args.task, args.batch, seq, min(args.preds, seq - 1),
                     config.vocab_size, generator)
  return model, forward, seq, batch


def train(args):
  import torch
  import transformers

  model, forward, seq, batch = set_up(torch, args)
  model.train()
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

  durations = []
  cpu = []  # process CPU seconds (all threads) of each step
  losses = []
  last = time.perf_counter()
  last_cpu = time.process_time()
  for _ in range(args.steps):
    optimizer.zero_grad(set_to_none=True)
    with precision_context(torch, args.precision):
      loss = forward(**batch).loss
    loss.backward()
    optimizer.step()
    losses.append(float(loss.detach()))
    now = time.perf_counter()
    durations.append(now - last)
    last = now
    now_cpu = time.process_time()
    cpu.append(now_cpu - last_cpu)
    last_cpu = now_cpu
  record = {"torch": torch.__version__, "transformers": transformers.__version__,
            "task": args.task, "precision": args.precision, "compiled": args.compile,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "batch": args.batch, "seq": seq, "preds": args.preds, "steps": args.steps,
            "durations_s": durations, "cpu_s": cpu, "losses": losses,
            "parameters": sum(p.numel() for p in model.parameters()),
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "mkldnn": bool(torch.backends.mkldnn.is_available())}
  return record


def predict(args):
  """--predict: forward passes of the task's model, as fast as PyTorch infers on a CPU:
  model.eval(), torch.inference_mode(), autocast for bf16, torch.compile with --compile."""
  import torch
  import transformers

  model, forward, seq, batch = set_up(torch, args)
  model.eval()
  inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
  durations, cpu = [], []
  with torch.inference_mode():
    for _ in range(args.steps):
      last, last_cpu = time.perf_counter(), time.process_time()
      with precision_context(torch, args.precision):
        outputs = forward(**inputs)
      float(outputs[0].float().sum())  # the results, used
      durations.append(time.perf_counter() - last)
      cpu.append(time.process_time() - last_cpu)
  return {"torch": torch.__version__, "transformers": transformers.__version__,
          "task": args.task, "precision": args.precision, "compiled": args.compile,
          "predict": True, "threads": torch.get_num_threads(),
          "interop_threads": torch.get_num_interop_threads(), "batch": args.batch, "seq": seq,
          "steps": args.steps, "durations_s": durations, "cpu_s": cpu,
          "parameters": sum(p.numel() for p in model.parameters()),
          "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def matmul_peak(args):
  """The best of --reps n x n matmuls in the precision's dtype, in GFLOP/s."""
  import torch

  torch.set_num_threads(args.threads)
  dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
  a = torch.rand(args.n, args.n, dtype=dtype)
  b = torch.rand(args.n, args.n, dtype=dtype)
  torch.mm(a, b)
  times = []
  for _ in range(args.reps):
    start = time.perf_counter()
    torch.mm(a, b)
    times.append(time.perf_counter() - start)
  return {"n": args.n, "reps": args.reps, "precision": args.precision, "times_s": times,
          "threads": torch.get_num_threads(),
          "gflop_per_s_best": 2.0 * args.n ** 3 / min(times) / 1e9}


def main(argv=None):
  top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  top.add_argument("--json")
  top.add_argument("--task", choices=TASKS, default="pretrain")
  top.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
  top.add_argument("--compile", action="store_true")
  top.add_argument("--predict", action="store_true")
  top.add_argument("--batch", type=int, default=2)
  top.add_argument("--seq", type=int, default=128)
  top.add_argument("--preds", type=int, default=20)
  top.add_argument("--steps", type=int, default=2)
  top.add_argument("--vocab", type=int, default=30000)
  top.add_argument("--threads", type=int, default=1)
  top.add_argument("--interop_threads", type=int, default=1)
  top.add_argument("--peak", action="store_true")
  top.add_argument("--n", type=int, default=2048)
  top.add_argument("--reps", type=int, default=8)
  top.add_argument("--selftest", action="store_true")
  args = top.parse_args(argv)
  record = (matmul_peak(args) if args.peak else predict(args) if args.predict
            else train(args))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(record, f)
  print(json.dumps({k: v for k, v in record.items() if k not in ("losses",)}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
