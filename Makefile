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

.PHONY: install prepare-data test mediapipe-env eval leaderboard bench clean train-tiny learn-tiny reproduce

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
	$(BIN)/toolkit eval --method reference-copy,gt-oracle,pose-warp --profile disco,disco-tm,standard --shards $(OUT)

RESULTS ?= eval/results
REPORT  ?= reports

# Every registered method that can run here, on the default dataset, then the report.
leaderboard: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/toolkit leaderboard --run --shards $(OUT) --profile disco,disco-tm,standard --results $(RESULTS) --out $(REPORT)

RUNS          ?= runs
TRAIN_MINUTES ?= 20
MA_STAGE1_MINUTES ?= 15
MA_STAGE2_MINUTES ?= 5

# Train both tiny reference models on the default dataset (CPU minutes; reruns resume), then score them:
# UniAnimate-style in one run, MagicAnimate-style in its two stages (images, then motion modules from stage 1).
train-tiny: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/toolkit train --method unianimate --config tiny --shards $(OUT) --out $(RUNS)/ua-tiny \
		--max-minutes $(TRAIN_MINUTES) $(if $(wildcard $(RUNS)/ua-tiny/checkpoint),--resume)
	$(BIN)/toolkit eval --method unianimate --checkpoint $(RUNS)/ua-tiny --shards $(OUT) --profile standard \
		--results $(RESULTS) --name ua-tiny
	$(BIN)/toolkit train --method magicanimate --config tiny --stage 1 --shards $(OUT) --out $(RUNS)/ma-tiny-1 \
		--max-minutes $(MA_STAGE1_MINUTES) $(if $(wildcard $(RUNS)/ma-tiny-1/checkpoint),--resume)
	$(BIN)/toolkit train --method magicanimate --config tiny --stage 2 --init $(RUNS)/ma-tiny-1 --shards $(OUT) \
		--out $(RUNS)/ma-tiny --max-minutes $(MA_STAGE2_MINUTES) $(if $(wildcard $(RUNS)/ma-tiny/checkpoint),--resume)
	$(BIN)/toolkit eval --method magicanimate --checkpoint $(RUNS)/ma-tiny --shards $(OUT) --profile standard \
		--results $(RESULTS) --name ma-tiny

# The learning check, per method and video: fit one training video for at most 15 minutes, regenerate it, compare
# with reference-copy (runs/learn-tiny-METHOD on a synthetic video, runs/learn-tiny-METHOD-real on a real
# UBC-Fashion clip from the shared fixtures with MediaPipe poses and masks). Both are prepared at the tiny configs'
# size (64) as PNG, so the scores are taken at the models' own resolution. Every check runs; the target fails if any
# bar is missed.
LEARN_METHODS ?= unianimate magicanimate
LEARN_SHARDS  ?= data/shards/synthetic-64
FIXTURES      ?= $(or $(TOOLKIT_FIXTURES),../shared/fixtures/real)
REAL_CLIP     := $(FIXTURES)/musepose/ubc_fashion/91-3003CN5S.mp4
REAL_SHARDS   ?= data/shards/ubc-real
learn-tiny: install $(if $(wildcard $(REAL_CLIP)),mediapipe-env)
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/toolkit prepare --dataset synthetic --source $(SOURCE) --out $(LEARN_SHARDS) --size 64 --image-format png \
		--split train --quiet
	@if [ -f "$(REAL_CLIP)" ]; then mkdir -p data/raw/ubc-real/train && \
		ln -sf "$(abspath $(REAL_CLIP))" data/raw/ubc-real/train/ && \
		$(BIN)/toolkit prepare --dataset fashion --source data/raw/ubc-real --out $(REAL_SHARDS) --size 64 \
			--fps 10 --pose mediapipe --image-format png --quiet; \
	else echo "learn-tiny: no real clip at $(REAL_CLIP) (set TOOLKIT_FIXTURES): the synthetic video only"; fi
	status=0; for m in $(LEARN_METHODS); do \
		$(BIN)/python scripts/learn_one_video.py --method $$m --shards $(LEARN_SHARDS) --out $(RUNS)/learn-tiny-$$m \
			--fresh || status=1; \
		if [ -f "$(REAL_CLIP)" ]; then $(BIN)/python scripts/learn_one_video.py --method $$m \
			--shards $(REAL_SHARDS) --out $(RUNS)/learn-tiny-$$m-real --fresh || status=1; fi; \
	done; exit $$status

# Reproduce a published row on a connected GPU machine (README, "Reproducing published numbers"):
#   make reproduce DATASET=tiktok SOURCE=/data/TikTok_dataset METHOD=magicanimate   (or METHOD=unianimate)
# fetches the released weights and the metric networks, converts the pickles once, prepares the test split, runs
# the release through our pipeline at the paper's settings, scores it under disco and standard, and writes the
# leaderboard with the measured row beside the published one and each metric's gap.
METHOD       ?= magicanimate
DEVICE       ?= cuda
REPRO_POSE   ?= mediapipe
REPRO_OUT    ?= data/shards/$(DATASET)-test
REPRO_SIZE   ?=
STRIPS       ?= 3
REPRO_WEIGHTS_magicanimate := magicanimate-appearance-encoder magicanimate-densepose-controlnet \
	magicanimate-temporal-attention sd15-text-encoder sd-vae-ft-mse
REPRO_WEIGHTS_unianimate := unianimate-16f-32f openclip-vit-h-14-laion2b sd21-512-ema-pruned
METRIC_WEIGHTS := fid-inception-pytorch fvd-i3d-400 lpips-vgg16-backbone lpips-alexnet-backbone

reproduce: install $(if $(filter mediapipe,$(REPRO_POSE)),mediapipe-env)
	$(BIN)/toolkit weights fetch $(REPRO_WEIGHTS_$(METHOD)) $(METRIC_WEIGHTS)
	$(BIN)/toolkit weights convert $(firstword $(filter %-temporal-attention %-16f-32f,$(REPRO_WEIGHTS_$(METHOD))))
	$(BIN)/toolkit prepare --dataset $(DATASET) --source $(SOURCE) --out $(REPRO_OUT) --split test \
		--pose $(REPRO_POSE) --densepose source $(if $(REPRO_SIZE),--size $(REPRO_SIZE))
	$(BIN)/toolkit eval --method $(METHOD) --checkpoint published --shards $(REPRO_OUT) --profile disco,standard \
		--device $(DEVICE) --results $(RESULTS) --name $(METHOD)-published
	$(BIN)/toolkit leaderboard --results $(RESULTS) --shards $(REPRO_OUT) --out $(REPORT) --strips $(STRIPS)

# Every benchmark in benchmarks/, then benchmarks/RESULTS.md (one line per measurement, with the machine).
# BENCH_ARGS=--quick: smaller workloads, the same comparisons.
bench: install
	@test -f $(OUT)/videos.parquet || $(MAKE) prepare-data
	$(BIN)/python benchmarks/report.py $(BENCH_ARGS)

clean:
	rm -rf data/shards build .pytest_cache
