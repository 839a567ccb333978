"""Running and logging the benchmark's subprocesses, and describing the machine."""
import os
import platform
import resource
import subprocess
import time
from pathlib import Path


def log(msg):
  print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg():
  try:
    return round(os.getloadavg()[0], 2)
  except OSError:
    return None


def machine():
  info = {"python": platform.python_version(), "platform": platform.platform(),
          "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpuinfo = f.read()
    for line in cpuinfo.splitlines():
      if line.startswith("model name"):
        info["cpu"] = line.split(":", 1)[1].strip()
        break
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    info["cpu_flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile",
                                     "avx512_vnni") if f" {f}" in flags]
  except OSError:
    pass
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      info["mem_gib"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
  except (OSError, ValueError, IndexError):
    pass
  try:
    import importlib.metadata as md
    info["tensorflow"] = md.version("tensorflow")
    info["horovod"] = md.version("horovod")
  except Exception:  # pylint: disable=broad-except
    pass
  return info


def run_logged(cmd, env, logfile, timeout, cwd=None, usage=None):
  """Runs cmd with output to logfile; returns (rc, seconds).

  usage: a dict that gets the CPU seconds (user + system) the command and its children used.
  """
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  with open(logfile, "a", encoding="utf-8") as out:
    out.write(f"$ {' '.join(map(str, cmd))}\n")
    out.flush()
    try:
      proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                            timeout=timeout, start_new_session=True)
      rc = proc.returncode
    except subprocess.TimeoutExpired:
      rc = "timeout"
  elapsed = time.perf_counter() - start
  if usage is not None:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    usage["cpu_per_wall"] = usage["cpu_s"] / elapsed if elapsed > 0 else None
  return rc, elapsed


def tail(path, lines=3):
  try:
    return " | ".join(Path(path).read_text(encoding="utf-8", errors="replace")
                      .strip().splitlines()[-lines:])
  except OSError:
    return ""
