#!/usr/bin/env python3
"""The peer for `python -m bench`: HuggingFace transformers AlbertForPreTraining on PyTorch (CPU).

Runs in the benchmark's own venv (build/bench-venv: torch + transformers), never in the
project's. One training step = forward, masked-LM + sentence-order loss, backward, AdamW
update, on random token ids with the shapes given. Writes one JSON object to --json.

  peer.py --json PATH --batch B --seq S --preds P --steps N --threads T
  peer.py --selftest   (imports torch and transformers and trains a tiny model one step)
"""
import argparse
import json
import resource
import sys
import time


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
                      attention_probs_dropout_prob=0.0, max_position_embeddings=512,
                      type_vocab_size=2, initializer_range=0.02)


def make_batch(torch, batch, seq, preds, vocab, generator):
  input_ids = torch.randint(5, vocab, (batch, seq), generator=generator)
  attention_mask = torch.ones(batch, seq, dtype=torch.long)
  token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
  token_type_ids[:, seq // 2:] = 1
  labels = torch.full((batch, seq), -100, dtype=torch.long)
  for row in range(batch):
    positions = torch.randperm(seq - 1, generator=generator)[:preds] + 1
    labels[row, positions] = input_ids[row, positions]
  sentence_order_label = torch.randint(0, 2, (batch,), generator=generator)
  return dict(input_ids=input_ids, attention_mask=attention_mask,
              token_type_ids=token_type_ids, labels=labels,
              sentence_order_label=sentence_order_label)


def train(args):
  import torch
  import transformers
  from transformers import AlbertForPreTraining

  torch.set_num_threads(args.threads)
  torch.set_num_interop_threads(max(1, args.interop_threads))
  torch.manual_seed(0)
  config = albert_base(args.vocab, tiny=args.selftest)
  model = AlbertForPreTraining(config)
  model.train()
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
  generator = torch.Generator().manual_seed(0)
  vocab = config.vocab_size
  seq = min(args.seq, config.max_position_embeddings)
  batch = make_batch(torch, args.batch, seq, min(args.preds, seq - 1), vocab, generator)

  durations = []
  cpu = []  # process CPU seconds (all threads) of each step
  losses = []
  last = time.perf_counter()
  last_cpu = time.process_time()
  for _ in range(args.steps):
    optimizer.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    optimizer.step()
    losses.append(float(out.loss.detach()))
    now = time.perf_counter()
    durations.append(now - last)
    last = now
    now_cpu = time.process_time()
    cpu.append(now_cpu - last_cpu)
    last_cpu = now_cpu
  record = {"torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "batch": args.batch, "seq": seq, "preds": args.preds, "steps": args.steps,
            "durations_s": durations, "cpu_s": cpu, "losses": losses,
            "parameters": sum(p.numel() for p in model.parameters()),
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "mkldnn": bool(torch.backends.mkldnn.is_available())}
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(record, f)
  print(json.dumps({k: v for k, v in record.items() if k not in ("losses",)}))
  return 0


def main(argv=None):
  top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  top.add_argument("--json")
  top.add_argument("--batch", type=int, default=2)
  top.add_argument("--seq", type=int, default=128)
  top.add_argument("--preds", type=int, default=20)
  top.add_argument("--steps", type=int, default=2)
  top.add_argument("--vocab", type=int, default=30000)
  top.add_argument("--threads", type=int, default=1)
  top.add_argument("--interop_threads", type=int, default=1)
  top.add_argument("--selftest", action="store_true")
  args = top.parse_args(argv)
  return train(args)


if __name__ == "__main__":
  sys.exit(main())
