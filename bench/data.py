"""Part 6: pretraining data. create_pretraining_data.py --output_dir with 1 and 2 workers on a
generated corpus, upstream's single process (--output_file) on the same corpus as the
baseline, and the peak resident memory per worker on a corpus 1x and 4x the size at the same
shard size (upstream's too, which grows with the corpus).

Every run is a process of its own, started through RSS_WRAPPER, which reports the largest
resident set of the run's process tree; the sharded runs also report their workers' own
peak, which is the figure per worker.
"""
import json
import re
import sys

import albert_data
from bench.measure import tf_env
from bench.proc import loadavg, run_logged, tail

# Generated documents average about 217 bytes of text.
BYTES_PER_DOC = 217
# Runs a command and writes {"rc", "max_rss_mb"} of its process tree to argv[1].
# Usage: python -c RSS_WRAPPER JSON -- COMMAND...
RSS_WRAPPER = """
import json, resource, subprocess, sys
rc = subprocess.call(sys.argv[3:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
json.dump({"rc": rc, "max_rss_mb": rss}, open(sys.argv[1], "w"))
sys.exit(rc)
"""


def write_inputs(work, args, logfile):
  """The 1x and 4x corpora (the 4x begins with the 1x) and a sentencepiece model."""
  d = work / "pretraining-data"
  d.mkdir(parents=True, exist_ok=True)
  docs = max(100, int(args.data_mb * 1e6 / BYTES_PER_DOC))
  corpora = {1: albert_data.write_corpus(d / "corpus-1x.txt", num_docs=docs, seed=21),
             4: albert_data.write_corpus(d / "corpus-4x.txt", num_docs=4 * docs, seed=21)}
  spm_model, spm_vocab = albert_data.train_sentencepiece(corpora[1], d / "sp")
  with open(logfile, "a", encoding="utf-8") as log:
    log.write("pretraining data: corpora %s\n" % {k: v.stat().st_size for k, v in
                                                  corpora.items()})
  return d, corpora, spm_model, spm_vocab


def data_flags(args, spm_model, spm_vocab):
  return [f"--vocab_file={spm_vocab}", f"--spm_model_file={spm_model}",
          f"--max_seq_length={args.seq}", f"--max_predictions_per_seq={args.preds}",
          f"--dupe_factor={args.data_dupe}", "--random_seed=12345"]


def timed_run(name, cmd, work, logfile, timeout):
  """One run through RSS_WRAPPER; returns wall time, CPU use, rc, peak RSS and its stderr."""
  rss_json = work / f"rss-{name}.json"
  load_before = loadavg()
  usage = {}
  start = logfile.stat().st_size if logfile.exists() else 0
  rc, secs = run_logged([sys.executable, "-c", RSS_WRAPPER, str(rss_json), "--", *cmd],
                        tf_env(1, 1, {}), logfile, timeout=timeout, usage=usage)
  output = logfile.read_bytes()[start:].decode("utf-8", errors="replace")
  result = {"command": " ".join(map(str, cmd)), "rc": rc, "wall_s": secs, **usage,
            "cores_used": usage.get("cpu_per_wall"), "loadavg_before": load_before,
            "loadavg_after": loadavg()}
  if rss_json.exists():
    result["max_rss_mb"] = json.loads(rss_json.read_text())["max_rss_mb"]
  worker = re.findall(r"peak memory per worker (\d+) MB", output)
  if worker:
    result["peak_rss_per_worker_mb"] = float(worker[-1])
  if rc != 0:
    result["error"] = f"{name} failed ({rc}); see {logfile}: {tail(logfile)}"
  return result


def same_files(a, b):
  """Whether two --output_dir runs wrote the same shards.json and record files."""
  def listing(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
  return listing(a) == listing(b)


def run(args, work, tree, logfile, results, notes, meta):
  """Part 6; fills results' data_* keys and meta["data"]."""
  d, corpora, spm_model, spm_vocab = write_inputs(work, args, logfile)
  script = str(tree / "create_pretraining_data.py")
  common = data_flags(args, spm_model, spm_vocab)
  runs = {}

  def sharded(name, size, workers):
    out = d / f"out-{name}"
    cmd = [sys.executable, script, f"--input_file={corpora[size]}", f"--output_dir={out}",
           f"--shard_size_mb={args.data_shard_mb}", f"--num_workers={workers}",
           f"--test_fraction={args.data_test_fraction}", *common]
    runs[name] = timed_run(name, cmd, work, logfile, args.run_timeout)
    return out

  def upstream(name, size):
    cmd = [sys.executable, script, f"--input_file={corpora[size]}",
           f"--output_file={d / (name + '.tfrecord')}", *common]
    runs[name] = timed_run(name, cmd, work, logfile, args.run_timeout)

  plan = [("data_w1", lambda: sharded("data_w1", 1, 1)),
          ("data_w2", lambda: sharded("data_w2", 1, 2)),
          ("data_upstream", lambda: upstream("data_upstream", 1)),
          ("data_w2_4x", lambda: sharded("data_w2_4x", 4, 2)),
          ("data_upstream_4x", lambda: upstream("data_upstream_4x", 4))]
  outs = {}
  for i, (name, go) in enumerate(plan, 1):
    print(f"[bench] 6/6 pretraining data {i}/{len(plan)}: {name}", flush=True)
    outs[name] = go()
  mb = {size: path.stat().st_size / 1e6 for size, path in corpora.items()}
  for name, r in runs.items():
    if r.get("error"):
      notes.append(f"data: {r['error']}")
      continue
    size = 4 if name.endswith("_4x") else 1
    r["mb_per_s"] = mb[size] / r["wall_s"]
    results[f"{name}_mb_per_s"] = r["mb_per_s"]
    # Per CPU-second: what the run's work cost, whatever share of the cores it got.
    results[f"{name}_mb_per_cpu_s"] = mb[size] / r["cpu_s"] if r.get("cpu_s") else None
    results[f"{name}_cores_used"] = r.get("cores_used")
  results["data_corpus_mb"] = mb[1]
  results["data_corpus_4x_mb"] = mb[4]
  results["data_shard_size_mb"] = args.data_shard_mb
  for name in ("data_w1", "data_w2", "data_w2_4x"):
    results[f"{name}_peak_rss_per_worker_mb"] = runs[name].get("peak_rss_per_worker_mb")
  for name in ("data_upstream", "data_upstream_4x"):
    results[f"{name}_peak_rss_mb"] = runs[name].get("max_rss_mb")

  def ratio(a, b):
    return a / b if a and b else None

  results["data_w2_over_w1"] = ratio(results.get("data_w2_mb_per_s"),
                                     results.get("data_w1_mb_per_s"))
  results["data_w1_over_upstream"] = ratio(results.get("data_w1_mb_per_s"),
                                           results.get("data_upstream_mb_per_s"))
  results["data_rss_4x_over_1x"] = ratio(results.get("data_w2_4x_peak_rss_per_worker_mb"),
                                         results.get("data_w2_peak_rss_per_worker_mb"))
  results["data_upstream_rss_4x_over_1x"] = ratio(results.get("data_upstream_4x_peak_rss_mb"),
                                                  results.get("data_upstream_peak_rss_mb"))
  if not (runs["data_w1"].get("error") or runs["data_w2"].get("error")):
    identical = same_files(outs["data_w1"], outs["data_w2"])
    meta_identical = identical
    if not identical:
      notes.append("data: the 1- and 2-worker runs wrote different files")
  else:
    meta_identical = None
  meta["data"] = {"runs": runs, "w1_w2_identical": meta_identical,
                  "settings": {"seq": args.seq, "preds": args.preds, "dupe": args.data_dupe,
                               "shard_mb": args.data_shard_mb,
                               "test_fraction": args.data_test_fraction}}
