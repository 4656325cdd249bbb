# The kit's stable interface. Every target creates or reuses .venv by itself.
PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SYNTH       ?= data/synthetic
DATA        ?= $(SYNTH)
KERNEL      ?= kaggle_kernel/submission.py
REPORT      ?= runs/gateway/report.json
SEED        ?= 0
PYTEST_ARGS ?=

.PHONY: venv test demo data download gateway lint lock clean train tune package etf etf-freeze submit bench

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,dist]"
	@touch $(STAMP)

## test: the whole test suite (installs what it needs first)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## demo: synthetic default data -> gateway runs (naive, oracle) -> score and latency table
demo: $(STAMP)
	$(PY) -m offline demo --out runs/demo --seed $(SEED)

## data: build the built-in synthetic competition directory in $(SYNTH) and verify its labels
data: $(STAMP)
	$(PY) -m offline data synth $(SYNTH) --seed $(SEED)
	$(PY) -m offline data verify $(SYNTH)

## download: fetch the real competition data with the kaggle CLI into data/mitsui and verify it
download: $(STAMP)
	$(VENV)/bin/kaggle competitions download -c mitsui-commodity-prediction-challenge -p data
	cd data && rm -rf mitsui && mkdir mitsui && cd mitsui && unzip -q ../mitsui-commodity-prediction-challenge.zip
	$(PY) -m offline data verify data/mitsui

## gateway: run KERNEL (default: the packaged kernel on artifacts/; or naive, oracle, a script) on DATA
gateway: $(STAMP)
	$(if $(filter kaggle_kernel/submission.py,$(KERNEL)),$(PY) -m offline check-artifacts artifacts,)
	MITSUI_KIT_ARTIFACTS=$(CURDIR)/artifacts $(PY) -m offline gateway --data $(DATA) --kernel $(KERNEL) --report $(REPORT)

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

## submit: push artifacts/ as a private dataset, push the kernel, wait for its run, submit (DRY_RUN=1 prints only)
submit: $(STAMP)
	$(PY) -m offline submit --artifacts artifacts $(if $(DRY_RUN),--dry-run,) $(if $(MESSAGE),-m "$(MESSAGE)",)

## bench: packed kernel vs a naive pandas + Booster.predict kernel, side by side -> table + bench/results.json
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

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
