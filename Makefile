# Two commands set everything up on a fresh, offline machine:
#   make prepare-data   # .venv + install + the default (synthetic) dataset into shards
#   make test
# Real data already on disk:  make prepare-data DATASET=tiktok SOURCE=/data/TikTok_dataset

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
DATASET ?= synthetic
SOURCE  ?= data/raw/$(DATASET)
OUT     ?= data/shards/$(DATASET)
WORKERS ?= 2
MEDIAPIPE_ENV := .venv-mediapipe

.PHONY: install prepare-data test mediapipe-env eval leaderboard bench clean train-tiny learn-tiny

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: pip takes these wheels from the local disk (a CUDA build that runs on the CPU)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Real datasets are annotated with mediapipe by default, which lives in its own environment (numpy<2).
$(MEDIAPIPE_ENV)/.installed:
	bash scripts/make_mediapipe_env.sh $(MEDIAPIPE_ENV)
	touch $@

mediapipe-env: $(MEDIAPIPE_ENV)/.installed

prepare-data: install $(if $(filter-out synthetic folder,$(DATASET)),mediapipe-env)
	$(BIN)/toolkit prepare --dataset $(DATASET) --source $(SOURCE) --out $(OUT) --workers $(WORKERS)
	$(BIN)/toolkit verify $(OUT)

test: install
	$(BIN)/pytest -q

# The built-in methods on the default dataset's test split, under both profiles.
eval: install
	$(BIN)/toolkit eval --method reference-copy,gt-oracle,pose-warp --profile disco,standard --dataset $(OUT)

RESULTS ?= eval/results
REPORT  ?= reports

# Every registered method that can run here, on the default dataset, then the report.
leaderboard: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/toolkit leaderboard --run --dataset $(OUT) --profile disco,standard --results $(RESULTS) --out $(REPORT)

RUNS          ?= runs
TRAIN_MINUTES ?= 20

# Train the tiny UniAnimate-style model on the default dataset (CPU minutes; reruns resume), then score it.
train-tiny: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/toolkit train --method unianimate --config tiny --shards $(OUT) --out $(RUNS)/ua-tiny \
		--max-minutes $(TRAIN_MINUTES) $(if $(wildcard $(RUNS)/ua-tiny/checkpoint),--resume)
	$(BIN)/toolkit eval --method unianimate --checkpoint $(RUNS)/ua-tiny --dataset $(OUT) --profile standard \
		--results $(RESULTS) --name ua-tiny

# The learning check: fit one training video for at most 15 minutes, regenerate it, compare with reference-copy.
learn-tiny: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/python scripts/learn_one_video.py --shards $(OUT) --out $(RUNS)/learn-tiny --fresh

# Every benchmark in benchmarks/, then benchmarks/RESULTS.md (one line per measurement, with the machine).
# BENCH_ARGS=--quick: smaller workloads, the same comparisons.
bench: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/python benchmarks/report.py $(BENCH_ARGS)

clean:
	rm -rf data/shards build .pytest_cache
