# The kit's stable interface. Every target creates or reuses .venv by itself.
PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
KVENV       := .venv-kaggle
KPY         := $(KVENV)/bin/python
KSTAMP      := $(KVENV)/.installed
ARTIFACTS   ?= artifacts
SYNTH       ?= data/synthetic
DATA        ?= $(SYNTH)
KERNEL      ?= kaggle_kernel/submission.py
REPORT      ?= runs/gateway/report.json
SEED        ?= 0
PYTEST_ARGS ?=

.PHONY: venv kaggle-venv postgres test demo data download gateway lint lock clean train tune package etf etf-freeze submit bench bench-train preflight soak

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,dist]"
	@touch $(STAMP)

# Kaggle's image: the kernel, Kaggle's own kaggle_evaluation (grpcio, protobuf) and the kernel's tests
kaggle-venv: $(KSTAMP)

$(KSTAMP): pyproject.toml constraints-kaggle.txt
	@test -x $(KPY) || $(PYTHON_BOOT) -m venv $(KVENV)
	$(KPY) -m pip install -q --upgrade "pip>=24"
	$(KPY) -m pip install -q -c constraints-kaggle.txt -e ".[dev]" grpcio protobuf
	@touch $(KSTAMP)

# the kernel's own tests, run again with Kaggle's versions (the feature parity tolerance under
# polars 1.x is in tests/test_features.py; README, "Kaggle's environment")
KERNEL_TESTS := tests/test_predictor.py tests/test_features.py tests/test_forest.py tests/test_crash_kernel.py tests/test_crash_serving.py

## postgres: the Debian PostgreSQL server the tune-storage test starts itself (installed once, as root)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  test "$$(id -u)" = 0 || { echo "error: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

## test: the whole test suite, then the kernel's tests in .venv-kaggle (installs what it needs first)
test: $(STAMP) $(KSTAMP) postgres
	MITSUI_KIT_KAGGLE_PYTHON=$(CURDIR)/$(KPY) $(PY) -m pytest $(PYTEST_ARGS)
	$(KPY) -m pytest -p no:cacheprovider $(KERNEL_TESTS)

## demo: synthetic default data -> gateway runs (naive, oracle) -> score and latency table
demo: $(STAMP)
	$(PY) -m offline demo --out runs/demo --seed $(SEED)

## data: build the built-in synthetic competition directory in $(SYNTH) and verify its labels
data: $(STAMP)
	$(PY) -m offline data synth $(SYNTH) --seed $(SEED)
	$(PY) -m offline data verify $(SYNTH)

## download: fetch the real competition data with the kaggle CLI into data/mitsui and verify it
download: $(STAMP)
	$(PY) -m offline.release.credentials
	$(VENV)/bin/kaggle competitions download -c mitsui-commodity-prediction-challenge -p data
	cd data && rm -rf mitsui && mkdir mitsui && cd mitsui && unzip -q ../mitsui-commodity-prediction-challenge.zip
	$(PY) -m offline data verify data/mitsui

## gateway: run KERNEL (default: the packaged kernel on ARTIFACTS; or naive, oracle, a script) on DATA in .venv-kaggle; OFFICIAL=1: Kaggle's package from DATA
gateway: $(STAMP) $(KSTAMP)
	$(if $(filter kaggle_kernel/submission.py,$(KERNEL)),$(PY) -m offline check-artifacts $(ARTIFACTS),)
	$(PY) -m offline gateway --data $(DATA) --kernel $(KERNEL) --report $(REPORT) --python $(KPY) --artifacts $(ARTIFACTS) $(if $(OFFICIAL),--official,)

## train: regime classifier + 424 regressors with walk-forward CV on DATA -> OUT (models, OOF, report)
TRAIN_OUT   ?= runs/train
train: $(STAMP)
	$(PY) -m offline train --data $(DATA) --out $(TRAIN_OUT) $(TRAIN_ARGS)

## tune: Optuna study (SQLite in runs/tune, or STORAGE=url) of the regressor parameters; train reads the best
TRIALS      ?= 20
tune: $(STAMP)
	$(PY) -m offline tune --data $(DATA) --out runs/tune --trials $(TRIALS) $(if $(STORAGE),--storage $(STORAGE),)

## package: models of a training run (MODELS) -> artifacts/, the Kaggle dataset
MODELS      ?= $(TRAIN_OUT)
package: $(STAMP)
	$(PY) -m offline package --models $(MODELS) --out artifacts

## etf: the ETF crash/momentum pipeline under the frozen design (SOURCE=sp500, nasdaq, a CSV or a competition dir;
##      TRAIN_END/VALID_END split it, the test block is every later row) -> OUT
OUT         ?= runs/etf
SOURCE      ?= sp500
TRAIN_END   ?=
VALID_END   ?=
ETF_SPLITS   = $(if $(TRAIN_END),--train-end $(TRAIN_END),) $(if $(VALID_END),--valid-end $(VALID_END),)
etf: $(STAMP)
	$(PY) -m offline etf all --out $(OUT) --source $(SOURCE) $(ETF_SPLITS)

## etf-freeze: search the design on data through 2018 (runs/etf-design), then write offline/etf/frozen.json
etf-freeze: $(STAMP)
	$(PY) -m offline etf all --search --out runs/etf-design --source $(SOURCE) $(ETF_SPLITS)
	$(PY) -m offline etf freeze --out runs/etf-design

PUBLIC      ?= ../shared/mitsui-public
DAYS        ?= 1000

## preflight: one-screen checklist for ARTIFACTS (real data, in-sample, imports, hashes, metadata, Kaggle's package on PUBLIC, soak)
preflight: $(STAMP) $(KSTAMP)
	$(PY) -m offline preflight --artifacts $(ARTIFACTS) --public $(PUBLIC) --python $(KPY) --soak-days $(DAYS)

## soak: DAYS (default 1000) synthetic days after training through the packaged kernel in .venv-kaggle -> bench/soak.json
soak: $(STAMP) $(KSTAMP)
	$(PY) -m offline soak --artifacts $(ARTIFACTS) --days $(DAYS) --python $(KPY)

## submit: preflight (stops on a failure unless FORCE=1), then push ARTIFACTS as a private dataset, push the kernel, wait, submit (DRY_RUN=1 prints only)
submit: $(STAMP)
	$(MAKE) preflight ARTIFACTS=$(ARTIFACTS) $(if $(FORCE)$(DRY_RUN),|| echo "preflight failed; continuing because of $(if $(FORCE),FORCE=1,DRY_RUN=1)",)
	$(PY) -m offline submit --artifacts $(ARTIFACTS) $(if $(DRY_RUN),--dry-run,) $(if $(MESSAGE),-m "$(MESSAGE)",)

## bench: packed kernel vs a naive pandas + Booster.predict kernel (bench/results.json), then bench-train (bench/train.json)
bench: $(STAMP)
	$(PY) -m bench.run $(if $(filter command line environment,$(origin ARTIFACTS)),--artifacts $(ARTIFACTS),) $(BENCH_ARGS)
	$(PY) -m bench.train $(BENCH_TRAIN_ARGS)

## bench-train: make train on the default market, quiet and with one competing CPU-bound process -> bench/train.json
bench-train: $(STAMP)
	$(PY) -m bench.train $(BENCH_TRAIN_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check offline kaggle_kernel tests bench
	$(VENV)/bin/ruff format --check offline kaggle_kernel tests bench

## lock: re-pin constraints.txt from a fresh resolve of pyproject.toml
lock:
	rm -rf /tmp/kit-lock && $(PYTHON_BOOT) -m venv /tmp/kit-lock
	/tmp/kit-lock/bin/pip install -q ".[dev,dist]"
	(echo "# Exact versions of every package installed by make venv (pip install -c constraints.txt)."; \
	 echo "# Regenerate with make lock after changing dependencies in pyproject.toml."; \
	 /tmp/kit-lock/bin/pip freeze | grep -vi '^mitsui-kit') > constraints.txt

clean:
	rm -rf runs artifacts/* .pytest_cache
