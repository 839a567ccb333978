# One-word entry points. Everything runs in .venv, which `setup` creates and fills.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOROVOD_VERSION := 0.28.1
# Upstream comes from the lock's URL unless ALBERT_UPSTREAM names a clone or bundle; the offline
# bundle beside this checkout, where there is one, is the default (tests/conftest.py and bench/
# fall back to the same path when run without make).
export ALBERT_UPSTREAM ?= $(wildcard $(CURDIR)/../shared/upstream/google-research-albert.bundle)
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1

.PHONY: setup gaudi-env hf-env apply check demo lint test test-long test-fast bench bench-data clean

setup: $(VENV)/.horovod-$(HOROVOD_VERSION)

CHECK_PYTHON = @$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else \
	  "$(PYTHON) is Python %d.%d; TensorFlow 2.15 needs Python 3.11 (make PYTHON=/path/to/python3.11)" % v)'

$(VENV)/.requirements: requirements.txt
	$(CHECK_PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

# Horovod is built from source against the TensorFlow above (no build isolation), with Gloo
# for CPU runs; the stamp keeps a second `make setup` from building it again.
$(VENV)/.horovod-$(HOROVOD_VERSION): $(VENV)/.requirements
	@command -v cmake >/dev/null && command -v g++ >/dev/null || { \
	  echo "error: building Horovod needs cmake and g++ (apt-get install cmake g++)" >&2; exit 1; }
	$(HOROVOD_ENV) $(PY) -m pip install --quiet --no-build-isolation horovod==$(HOROVOD_VERSION)
	$(VENV)/bin/horovodrun --check-build 2>/dev/null | grep -q '\[X\] TensorFlow' || { \
	  echo "error: Horovod was built without TensorFlow support" >&2; exit 1; }
	@touch $@

# Habana's TensorFlow bridge, for the tests that build graphs with its real ops on a machine
# without a Gaudi: a venv of its own (requirements-gaudi.txt), since the bridge needs the
# tensorflow-cpu wheel. Its wheel is tagged cp310 but its libraries load in Python 3.11, so it is
# downloaded without dependencies and unpacked into site-packages. Independent of `setup`.
GAUDI_VENV := build/gaudi-venv
HABANA_TENSORFLOW := habana-tensorflow==1.14.0.493

gaudi-env: $(GAUDI_VENV)/.stamp

$(GAUDI_VENV)/.stamp: requirements-gaudi.txt
	$(CHECK_PYTHON)
	rm -rf $(GAUDI_VENV)
	$(PYTHON) -m venv $(GAUDI_VENV)
	$(GAUDI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-gaudi.txt
	$(GAUDI_VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
	  --python-version 3.10 --only-binary=:all: -d $(GAUDI_VENV)/wheels $(HABANA_TENSORFLOW)
	$(GAUDI_VENV)/bin/python -c 'import glob, sysconfig, zipfile; \
	  [zipfile.ZipFile(w).extractall(sysconfig.get_paths()["purelib"]) \
	   for w in glob.glob("$(GAUDI_VENV)/wheels/habana_tensorflow-*.whl")]'
	@touch $@

# HuggingFace transformers on PyTorch (CPU), the oracle of the conversion tests
# (tests/hf_oracle.py): a venv of its own from requirements-hf.txt, never .venv. The check
# after the install refuses a CUDA build of torch. Independent of `setup`.
HF_VENV := build/hf-venv

hf-env: $(HF_VENV)/.stamp

$(HF_VENV)/.stamp: requirements-hf.txt
	$(CHECK_PYTHON)
	rm -rf $(HF_VENV)
	$(PYTHON) -m venv $(HF_VENV)
	$(HF_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-hf.txt
	$(HF_VENV)/bin/python -c 'import sys, torch, transformers; \
	  sys.exit("error: $(HF_VENV) has a CUDA build of torch (%s); requirements-hf.txt wants \
	  the CPU wheel" % torch.version.cuda if torch.version.cuda else 0)'
	@touch $@

apply: setup
	$(PY) tools/apply_patches.py apply

check: setup
	$(PY) tools/apply_patches.py check

demo: apply
	$(PY) tools/demo.py

# The project's Python (tools/, tests/, bench/, overlay/) against the rules in pyproject.toml.
lint: setup
	$(PY) -m ruff check .

# The lint first, since it takes a second. The series check and the tests' builds on the real
# upstream share one cache, so upstream is converted once per cache (a fresh clone's build/cache
# in CI). pytest runs two workers (two cores), each taking whole files; tests/conftest.py puts
# the longest files first. The tests marked `learning` (train until a model learns) and `long`
# (longer runs of code a shorter test covers) are left to test-long, which keeps make test
# under 15 minutes; CI runs both.
test: export ALBERT_PATCHES_CACHE ?= $(CURDIR)/build/cache
test: setup gaudi-env hf-env
	$(PY) -m ruff check .
	$(PY) tools/apply_patches.py check
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not learning and not long" tests

test-long: export ALBERT_PATCHES_CACHE ?= $(CURDIR)/build/cache
test-long: setup gaudi-env hf-env
	$(PY) -m pytest -q -n 2 --dist loadfile -m "learning or long" tests

# The tests that build nothing real (the tool's helpers, in process): seconds, for iterating.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

# Figures, not tests: tool costs, training throughput against HF transformers' ALBERT, utilisation.
bench: setup
	$(PY) -m bench

# Only the pretraining data rows (bench/README.md, part 6), merged into bench/results.json.
bench-data: setup
	$(PY) -m bench --data-only

clean:
	rm -rf build
