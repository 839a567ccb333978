"""Part 7: what gradient accumulation saves and costs, on the fp32 pretraining row.

Two runs of run_pretraining.py besides the row itself (batch b, N = 1):
  accum   micro-batch b, --num_accumulation_steps=N (ACCUMULATE): the big batch in N pieces
  big     batch N x b, N = 1: the same update in one piece
Figures: each run's peak resident memory and the ratio accum / big (the point of the feature:
well below 1), and examples/s of accum over the row's (what summing into accumulators costs;
near 1) and over big's. The accumulated run times whole updates: one update of warm-up (graph
optimisation included), then TIMED_UPDATES; the big batch one step of warm-up and TIMED_UPDATES.
"""
import argparse

ACCUMULATE = 8
TIMED_UPDATES = 2


def _with(args, **changes):
  copy = argparse.Namespace(**vars(args))
  for key, value in changes.items():
    setattr(copy, key, value)
  return copy


def plan(args, train, pretraining_flags):
  """(name, what to log, measure) for both runs; train(name, run_args, flags) measures one,
  pretraining_flags(run_args, out, steps) gives the script's flags."""
  # Each run trains (1 + TIMED_UPDATES) x ACCUMULATE batches of b; its time limit grows with
  # that against a row's warm-up + timed steps.
  work = (1 + TIMED_UPDATES) * ACCUMULATE / max(1, args.warmup + args.timed)
  run_timeout = int(args.run_timeout * max(1.0, work) * 1.5)
  accum_args = _with(args, warmup=ACCUMULATE, timed=ACCUMULATE * TIMED_UPDATES,
                     run_timeout=run_timeout)
  big_args = _with(args, batch=args.batch * ACCUMULATE, warmup=1, timed=TIMED_UPDATES,
                   run_timeout=run_timeout)

  def accum_flags(out, micro_batches):
    # The script counts updates: a run of 1 + TIMED_UPDATES of them.
    return pretraining_flags(accum_args, out, micro_batches // ACCUMULATE) + [
        f"--num_accumulation_steps={ACCUMULATE}"]

  def big_flags(out, steps):
    return pretraining_flags(big_args, out, steps)

  return [
      ("pretrain_fp32_accum", f"7/7 run_pretraining.py, micro-batch {args.batch} x "
       f"{ACCUMULATE} accumulated, {1 + TIMED_UPDATES} updates",
       lambda: train("pretrain_fp32_accum", accum_args, accum_flags)),
      ("pretrain_fp32_big", f"7/7 run_pretraining.py, batch {args.batch * ACCUMULATE}, "
       f"{1 + TIMED_UPDATES} steps", lambda: train("pretrain_fp32_big", big_args, big_flags)),
  ]


def peak_rss_mib(run):
  """The largest peak resident memory of a run's processes, or None."""
  peaks = [rank.get("max_rss_mib") for rank in (run or {}).get("per_rank", [])]
  peaks = [p for p in peaks if p]
  return max(peaks) if peaks else None


def figures(runs, results):
  accum, big = runs.get("pretrain_fp32_accum"), runs.get("pretrain_fp32_big")
  if not accum and not big:
    return
  results["accumulation_steps"] = ACCUMULATE
  for name, run in (("accum", accum), ("big", big)):
    results[f"pretrain_fp32_{name}_peak_rss_mb"] = peak_rss_mib(run)
  accum_rss = results["pretrain_fp32_accum_peak_rss_mb"]
  big_rss = results["pretrain_fp32_big_peak_rss_mb"]
  results["accumulation_rss_over_big_batch"] = (accum_rss / big_rss if accum_rss and big_rss
                                                else None)
  accum_rate = results.get("pretrain_fp32_accum_examples_per_s")
  for key, other in (("accumulation_over_unaccumulated", "pretrain_fp32_examples_per_s"),
                     ("accumulation_over_big_batch", "pretrain_fp32_big_examples_per_s")):
    rate = results.get(other)
    results[key] = accum_rate / rate if accum_rate and rate else None


def table(f, fmt, markdown):
  """Part 7 as a markdown table (fmt and markdown: report.py's)."""
  if f.get("accumulation_steps") is None:
    return None
  n = f["accumulation_steps"]
  rows = [
      (f"micro-batch b x {n} accumulated", fmt(f.get("pretrain_fp32_accum_examples_per_s")),
       fmt(f.get("pretrain_fp32_accum_peak_rss_mb"), "MB"),
       f"{fmt(f.get('accumulation_over_unaccumulated'))} x batch b unaccumulated; "
       f"{fmt(f.get('accumulation_over_big_batch'))} x batch {n}b"),
      (f"batch {n}b", fmt(f.get("pretrain_fp32_big_examples_per_s")),
       fmt(f.get("pretrain_fp32_big_peak_rss_mb"), "MB"),
       f"accumulated / batch {n}b memory {fmt(f.get('accumulation_rss_over_big_batch'))}"),
  ]
  return markdown((f"gradient accumulation, pretrain fp32 (N = {n})", "examples/s",
                   "peak RSS", "note"), rows)
