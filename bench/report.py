"""The benchmark's output: the unit of each figure, the printed table, bench/results.json."""
import json
from pathlib import Path

UNITS = {
    "cold_apply_s": "s", "warm_apply_s": "s", "noop_apply_s": "s", "noop_regenerate_s": "s",
    "check_s": "s", "floor_s": "s", "floor_clone_s": "s",
    "cold_apply_over_floor": "ratio", "warm_apply_over_floor": "ratio",
    "noop_apply_over_floor": "ratio", "noop_regenerate_over_floor": "ratio",
    "check_over_floor": "ratio",
    "tf_1proc_examples_per_s": "examples/s", "tf_hvd2_examples_per_s": "examples/s",
    "peer_examples_per_s": "examples/s", "examples_per_s_ratio_vs_peer": "ratio",
    "hvd2_examples_per_s_ratio_vs_peer": "ratio", "hvd2_over_1proc": "ratio",
    "tf_1proc_step_s": "s", "tf_hvd2_step_s": "s", "peer_step_s": "s",
    "model_gflop_per_example": "GFLOP", "matmul_peak_gflop_per_s": "GFLOP/s",
    "matmul_peak_1thread_gflop_per_s": "GFLOP/s",
    "tf_1proc_utilisation_pct": "%", "tf_hvd2_utilisation_pct": "%", "peer_utilisation_pct": "%",
    "gpu_examples_per_s": "examples/s",
    "tf_1proc_examples_per_cpu_s": "examples/CPU-s", "tf_hvd2_examples_per_cpu_s":
    "examples/CPU-s", "peer_examples_per_cpu_s": "examples/CPU-s",
    "examples_per_cpu_s_ratio_vs_peer": "ratio",
    "tf_1proc_utilisation_of_cores_got_pct": "%", "tf_hvd2_utilisation_of_cores_got_pct": "%",
    "peer_utilisation_of_cores_got_pct": "%",
    "tf_1proc_cores_used": "cores", "tf_hvd2_cores_used": "cores", "peer_cores_used": "cores",
}


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


def table(results):
  """The results as one markdown table: part, figure, value, note."""
  f = results
  meta = f.get("meta", {})
  runs = meta.get("runs", {})
  rows = []

  def value(key):
    unit = UNITS.get(key, "")
    return fmt(f.get(key), "" if unit == "ratio" else unit)

  def over(key):
    return f"{fmt(f.get(key))} x floor" if f.get(key) is not None else ""

  def how(name):
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

  rows += [
      ("1 tool", "apply, empty cache", value("cold_apply_s"), over("cold_apply_over_floor")),
      ("1 tool", "apply, warm cache, one patch edited", value("warm_apply_s"),
       over("warm_apply_over_floor") + " (target <= 1.2)"),
      ("1 tool", "apply, nothing changed", value("noop_apply_s"),
       over("noop_apply_over_floor") + " (target < 0.3 s)"),
      ("1 tool", "regenerate, nothing changed", value("noop_regenerate_s"),
       over("noop_regenerate_over_floor")),
      ("1 tool", "check", value("check_s"), over("check_over_floor")),
      ("1 tool", "floor: git clone + tf_upgrade_v2", value("floor_s"), ""),
      ("2 train", "patched ALBERT, 1 process", value("tf_1proc_examples_per_s"),
       how("tf_1proc")),
      ("2 train", "patched ALBERT, horovodrun -np 2", value("tf_hvd2_examples_per_s"),
       how("tf_hvd2") + (f"; {fmt(f.get('hvd2_over_1proc'))} x 1 process"
                         if f.get("hvd2_over_1proc") else "")),
      ("3 peer", "HF AlbertForPreTraining (PyTorch)", value("peer_examples_per_s"), how("peer")),
      ("3 peer", "ours (1 process) / peer", value("examples_per_s_ratio_vs_peer"),
       "target >= 1.0; per CPU-second: "
       f"{fmt(f.get('examples_per_cpu_s_ratio_vs_peer'))}"),
      ("3 peer", "ours (horovodrun -np 2) / peer", value("hvd2_examples_per_s_ratio_vs_peer"),
       ""),
      ("4 limit", "model FLOPs per example", value("model_gflop_per_example"),
       "3 x forward; per-layer compute x layers"),
      ("4 limit", "TF matmul peak", value("matmul_peak_gflop_per_s"),
       f"{meta.get('threads')} threads; 1 thread: "
       f"{fmt(f.get('matmul_peak_1thread_gflop_per_s'), 'GFLOP/s')}"),
      ("4 limit", "utilisation, ours 1 process", value("tf_1proc_utilisation_pct"),
       "of the cores it got: " + value("tf_1proc_utilisation_of_cores_got_pct")),
      ("4 limit", "utilisation, ours horovodrun -np 2", value("tf_hvd2_utilisation_pct"),
       "of the cores it got: " + value("tf_hvd2_utilisation_of_cores_got_pct")),
      ("4 limit", "utilisation, peer", value("peer_utilisation_pct"),
       "of the cores it got: " + value("peer_utilisation_of_cores_got_pct")),
      ("5 GPU", "GPU throughput", "n/a", "no GPU in this session: not measured"),
  ]
  header = ("part", "figure", "value", "note")
  widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
  lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  for r in rows:
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
  return "\n".join(lines)


def write(args, results, notes, meta):
  """Prints the heading, the table and the notes, and writes the results file (args.json)."""
  out = {**{k: results.get(k) for k in UNITS if k in results}, "units": UNITS,
         "notes": notes, "meta": meta}
  table_text = table({**results, "meta": meta})
  print()
  print(f"ALBERT benchmark, {meta['started']}, {meta['machine'].get('cpu', '?')} "
        f"({meta['machine']['cpus']} cpus), batch {args.batch} x seq {args.seq}, "
        f"{args.timed} timed steps after {args.warmup} warm-up, optimizer {args.optimizer}"
        + (" [--quick: numbers mean nothing]" if args.quick else ""))
  print(table_text)
  for n in notes:
    print(f"- {n}")
  print(f"- load average (1 min) at start/end: {meta['machine']['loadavg_at_start'][0]:.2f} / "
        f"{meta['loadavg_at_end'][0]:.2f} on {meta['machine']['cpus']} cpus; total "
        f"{meta['total_s']:.0f} s")
  out["table"] = table_text
  path = Path(args.json)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
  print(f"- wrote {path}")
