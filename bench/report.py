"""The benchmark's output: the unit and target of each figure, the printed tables and
bench/results.json."""
import json
from pathlib import Path

from bench import accumulation

# A key's unit is given by how its name ends; the first match counts.
UNIT_SUFFIXES = (
    ("_mb_per_cpu_s", "MB/CPU-s"), ("_mb_per_s", "MB/s"), ("_rss_mb", "MB"),
    ("_rss_per_worker_mb", "MB"), ("_mb", "MB"),
    ("_over_w1", "ratio"), ("_over_upstream", "ratio"), ("_4x_over_1x", "ratio"),
    ("_over_floor", "ratio"), ("_ratio_vs_peer", "ratio"), ("_over_1proc", "ratio"),
    ("_examples_per_cpu_s", "examples/CPU-s"), ("_examples_per_s", "examples/s"),
    ("_gflop_per_s", "GFLOP/s"), ("_gflop_per_example", "GFLOP"), ("_pct", "%"),
    ("_cores_used", "cores"), ("_s", "s"),
)


def unit(key):
  return next((u for suffix, u in UNIT_SUFFIXES if key.endswith(suffix)), "")


# The targets of the tool's figures: each figure and the bound it must keep. Each row's
# examples/s must be at least RATIO_TARGET times the peer's best.
TARGETS = {"cold_apply_over_floor": ("<=", 1.2), "warm_apply_over_floor": ("<=", 1.2),
           "noop_apply_s": ("<", 0.3), "data_w2_over_w1": (">=", 1.8),
           "data_rss_4x_over_1x": ("<=", 1.1)}
RATIO_TARGET = 1.1


def speed_ratio(key):
  """Whether KEY is a row's examples/s over the peer's (not memory, not the -np 2 run)."""
  return (key.endswith("_ratio_vs_peer") and not key.startswith("hvd2")
          and not key.endswith("_rss_ratio_vs_peer"))


def target_text(key):
  """KEY's target as the table shows it, e.g. "(target < 0.3 s)"."""
  relation, bound = TARGETS[key]
  shown_unit = " s" if unit(key) == "s" else ""
  return f"(target {relation} {bound:g}{shown_unit})"


def target_notes(results):
  """A note for each figure that misses its target: each row's examples/s ratio to the peer
  must be at least RATIO_TARGET, and TARGETS' figures within their bounds."""
  notes = []
  targets = dict(TARGETS, **{k: (">=", RATIO_TARGET) for k in results if speed_ratio(k)})
  for key, (relation, bound) in targets.items():
    value = results.get(key)
    if value is None:
      continue
    kept = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[relation]
    if not kept:
      notes.append(f"target missed: {key} = {value:.3g}, want {relation} {bound:g} "
                   "(bench/README.md says where the time goes)")
  return notes


def fmt(value, unit=""):
  if value is None:
    return "n/a"
  if isinstance(value, str):
    return value
  if unit == "%":
    return f"{value:.1f} %"
  if abs(value) >= 100:
    return f"{value:.0f} {unit}".strip()
  if abs(value) >= 10:
    return f"{value:.1f} {unit}".strip()
  return f"{value:.3g} {unit}".strip()


def markdown(header, rows):
  widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
  lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
  return "\n".join(lines)


def how(runs, name):
  """A run's processes and threads, and the cores and CPU-seconds it got."""
  r = runs.get(name) or {}
  if r.get("error"):
    return r["error"][:90]
  if "threads" in r:
    text = f"1 proc x {r['threads']} threads"
  elif "processes" in r:
    text = (f"{r['processes']} proc x {r['intra_op_threads_per_process']} intra / "
            f"{r['inter_op_threads_per_process']} inter-op threads")
  else:
    return ""
  if r.get("cores_used") is not None:
    text += f"; got {r['cores_used']:.2f} cores"
  if r.get("examples_per_cpu_s") is not None:
    text += f"; {r['examples_per_cpu_s']:.3g} examples/CPU-s"
  return text


def tool_table(f):
  """Part 1 as a markdown table: figure, value, note."""

  def over(key, target=""):
    return (f"{fmt(f.get(key))} x floor {target}".strip() if f.get(key) is not None
            else "")

  rows = [
      ("apply, empty cache", fmt(f.get("cold_apply_s"), "s"),
       over("cold_apply_over_floor", target_text("cold_apply_over_floor"))),
      ("apply, warm cache, one patch edited", fmt(f.get("warm_apply_s"), "s"),
       over("warm_apply_over_floor", target_text("warm_apply_over_floor"))),
      ("apply, nothing changed", fmt(f.get("noop_apply_s"), "s"),
       over("noop_apply_over_floor", target_text("noop_apply_s"))),
      ("regenerate, nothing changed", fmt(f.get("noop_regenerate_s"), "s"),
       over("noop_regenerate_over_floor")),
      ("check", fmt(f.get("check_s"), "s"), over("check_over_floor")),
      ("floor: git clone + tf_upgrade_v2", fmt(f.get("floor_s"), "s"), ""),
  ]
  return markdown(("tool", "value", "note"), rows)


def training_table(f, meta):
  """Parts 2-4 as a markdown table: one line per task and precision, ours beside the peer."""
  runs = meta.get("runs", {})
  best = meta.get("peer_best", {})
  rows = []

  def peer_memory(name):
    return "peer " + ", ".join(f"{mode} {fmt(f.get(f'{name}_peer_{mode}_peak_rss_mb'), 'MB')}"
                               for mode in meta.get("peer_modes", []))

  def row(name, label, memory):
    peers = [f"{mode} {fmt(f.get(f'{name}_peer_{mode}_examples_per_s'))}"
             for mode in meta.get("peer_modes", [])]
    rows.append((label, fmt(f.get(f"{name}_examples_per_s")), ", ".join(peers),
                 f"{fmt(f.get(f'{name}_ratio_vs_peer'))} (target >= {RATIO_TARGET:g})",
                 f"{fmt(f.get(f'{name}_utilisation_pct'), '%')} / "
                 f"{fmt(f.get(f'{name}_peer_utilisation_pct'), '%')}",
                 f"{fmt(f.get(f'{name}_peak_rss_mb'), 'MB')} / "
                 f"{fmt(f.get(f'{name}_peer_peak_rss_mb'), 'MB')} = "
                 f"{fmt(f.get(f'{name}_peak_rss_ratio_vs_peer'))} ({peer_memory(name)})"
                 if memory else "",
                 f"ours: {how(runs, name)}; peer ({best.get(name) or 'n/a'}): "
                 f"{how(runs, f'{name}_peer_{best.get(name)}')}"))

  for task in meta.get("tasks", []):
    for precision in meta.get("precisions", []):
      row(f"{task}_{precision}", f"{task} {precision}", True)
  for task in meta.get("tasks", []):
    for precision in meta.get("precisions", []):
      if f"{task}_{precision}_predict" in best:
        row(f"{task}_{precision}_predict", f"{task} {precision} predict", False)
  if "tf_hvd2" in runs:
    rows.append(("pretrain fp32, -np 2", fmt(f.get("tf_hvd2_examples_per_s")), "",
                 fmt(f.get("hvd2_examples_per_s_ratio_vs_peer")),
                 fmt(f.get("tf_hvd2_utilisation_pct"), "%"), "",
                 how(runs, "tf_hvd2") + (f"; {fmt(f.get('hvd2_over_1proc'))} x 1 process"
                                         if f.get("hvd2_over_1proc") else "")))
  return markdown(("row", "ours (examples/s)", "peer eager, compiled (examples/s)",
                   "ours / peer best", "utilisation ours / peer",
                   "peak RSS ours / peer", "note"), rows)


def limits(f):
  """Part 4's constants, one line each."""
  return (f"model GFLOP per example: pretrain {fmt(f.get('pretrain_gflop_per_example'))}, "
          f"squad {fmt(f.get('squad_gflop_per_example'))}, "
          f"classifier {fmt(f.get('classifier_gflop_per_example'))}; matmul peak fp32 "
          f"{fmt(f.get('matmul_peak_gflop_per_s'), 'GFLOP/s')} (1 thread "
          f"{fmt(f.get('matmul_peak_1thread_gflop_per_s'), 'GFLOP/s')}), bf16 "
          f"{fmt(f.get('matmul_peak_bf16_gflop_per_s'), 'GFLOP/s')} (1 thread "
          f"{fmt(f.get('matmul_peak_bf16_1thread_gflop_per_s'), 'GFLOP/s')}); GPU: n/a")


def data_table(f, meta):
  """Part 6 as a markdown table: the pretraining data runs, MB of text per second and memory."""
  runs = (meta.get("data") or {}).get("runs", {})

  def note(name):
    r = runs.get(name) or {}
    if r.get("error"):
      return r["error"][:90]
    text = f"got {r['cores_used']:.2f} cores" if r.get("cores_used") else ""
    if f.get(f"{name}_mb_per_cpu_s"):
      text += f"; {f[name + '_mb_per_cpu_s']:.3g} MB/CPU-s"
    return text

  rows = [
      ("upstream --output_file, 1 process", fmt(f.get("data_upstream_mb_per_s")),
       f"{fmt(f.get('data_upstream_peak_rss_mb'), 'MB')} / "
       f"{fmt(f.get('data_upstream_4x_peak_rss_mb'), 'MB')}",
       f"4x / 1x memory {fmt(f.get('data_upstream_rss_4x_over_1x'))}; "
       + note("data_upstream")),
      ("--output_dir, 1 worker", fmt(f.get("data_w1_mb_per_s")),
       fmt(f.get("data_w1_peak_rss_per_worker_mb"), "MB"),
       f"{fmt(f.get('data_w1_over_upstream'))} x upstream; " + note("data_w1")),
      ("--output_dir, 2 workers", fmt(f.get("data_w2_mb_per_s")),
       f"{fmt(f.get('data_w2_peak_rss_per_worker_mb'), 'MB')} / "
       f"{fmt(f.get('data_w2_4x_peak_rss_per_worker_mb'), 'MB')}",
       f"{fmt(f.get('data_w2_over_w1'))} x 1 worker {target_text('data_w2_over_w1')}; "
       f"4x / 1x memory {fmt(f.get('data_rss_4x_over_1x'))} "
       f"{target_text('data_rss_4x_over_1x')}; " + note("data_w2")),
  ]
  return markdown(("pretraining data (%s MB corpus, %s MB shards)" % (
      fmt(f.get("data_corpus_mb")), fmt(f.get("data_shard_size_mb"))), "MB/s",
                   "peak RSS per worker, 1x / 4x corpus", "note"), rows)


def merge_data(args, results, notes, meta):
  """--data-only: replaces the data_* figures, notes and meta of the results file (args.json),
  keeping the rest, and prints the data table."""
  path = Path(args.json)
  out = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {
      "units": {}, "notes": [], "meta": {}}
  out = {k: v for k, v in out.items() if not k.startswith("data_")}
  out.update(results)
  out["units"] = {k: v for k, v in out["units"].items() if not k.startswith("data_")}
  out["units"].update({k: unit(k) for k in results})
  out["notes"] = [n for n in out["notes"] if not n.startswith("data:") and "data_" not in n]
  out["notes"] += notes
  out["meta"]["data"] = meta["data"]
  out["data_table"] = data_table(results, meta)
  # Keep the unit, notes, meta and table keys last, as write() orders them.
  out = {**{k: v for k, v in out.items() if k not in ("units", "notes", "meta", "table",
                                                      "data_table")},
         **{k: out[k] for k in ("units", "notes", "meta", "table", "data_table") if k in out}}
  print()
  print(out["data_table"])
  for n in notes:
    print(f"- {n}")
  data = meta["data"]
  print(f"- load average (1 min) at start/end: {data['loadavg_at_start'][0]:.2f} / "
        f"{data['loadavg_at_end'][0]:.2f} on {meta['machine']['cpus']} cpus; total "
        f"{data['total_s']:.0f} s")
  path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
  print(f"- wrote {path}")


def write(args, results, notes, meta):
  """Prints the heading, the table and the notes, and writes the results file (args.json)."""
  out = {**results, "units": {k: unit(k) for k in results}, "notes": notes, "meta": meta}
  table_text = (tool_table(results) + "\n\n" + training_table(results, meta) + "\n\n"
                + limits(results))
  accumulated = accumulation.table(results, fmt, markdown)
  if accumulated:
    table_text += "\n\n" + accumulated
  print()
  print(f"ALBERT benchmark, {meta['started']}, {meta['machine'].get('cpu', '?')} "
        f"({meta['machine']['cpus']} cpus), {args.timed} timed steps after {args.warmup} "
        f"warm-up, optimizer {args.optimizer}, {args.threads} threads"
        + (" [--quick: numbers mean nothing]" if args.quick else ""))
  print(table_text)
  for n in notes:
    print(f"- {n}")
  print(f"- load average (1 min) at start/end: {meta['machine']['loadavg_at_start'][0]:.2f} / "
        f"{meta['loadavg_at_end'][0]:.2f} on {meta['machine']['cpus']} cpus; total "
        f"{meta['total_s']:.0f} s")
  out["table"] = table_text
  if "data" in meta:
    out["data_table"] = data_table(results, meta)
    print(out["data_table"])
  path = Path(args.json)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
  print(f"- wrote {path}")
