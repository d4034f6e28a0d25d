# EVER — the two commands: `make report` (main job) and `make test` (install + lint + tests).
# Both create .venv if missing and install the package into it first.
PY         ?= python3
VENV       ?= .venv
VENV_FLAGS ?=
# PyTorch is installed once, before the package, and only if `import torch` fails in the venv.
# The default is the CPU wheel; with a GPU, e.g. TORCH_SPEC="torch --index-url <your CUDA index>",
# or VENV_FLAGS=--system-site-packages to reuse the CUDA build you already have.
TORCH_SPEC ?= torch==2.13.0
# Extra `ever report` arguments for every report target, e.g. REPORT_ARGS="--jobs 2" (two runs at a time, each on
# half the cores: on a small CPU several one-thread runs finish a grid sooner than one run on every core).
REPORT_ARGS ?=
BIN   := $(VENV)/bin
STAMP := $(VENV)/.ever-installed

.PHONY: install test lint report data davis-dev green green-long data-scaling objects-lr gpu-check clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV_FLAGS) $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

test: lint
	$(BIN)/python -m pytest -q

# Lint and format check (ruff, configured in pyproject.toml), run first by `make test` and so by CI.
lint: $(STAMP)
	$(BIN)/python -m ruff check ever tests bench
	$(BIN)/python -m ruff format --check ever tests bench

report: $(STAMP)
	$(BIN)/ever report $(REPORT_ARGS)

data: $(STAMP)
	$(BIN)/ever data generate ever-synth

# Real video (needs a DAVIS-layout folder; see configs/report-davis-dev.yaml): the synthetic-data run
# trains on ever-synth, so that is generated first (cached when present).
davis-dev: data
	$(BIN)/ever report --grid configs/report-davis-dev.yaml $(REPORT_ARGS)

# The green claims on real video (issue 14): patch crops against object crops and the GCN variants, three
# seeds, curves of accuracy against training compute; rewrites the committed snapshot results/green (git diff
# shows what changed). About 1.7 h on 2 CPU cores (see configs/report-green.yaml); needs the DAVIS folders.
green: $(STAMP)
	$(BIN)/ever report --grid configs/report-green.yaml --snapshot results/green $(REPORT_ARGS)

# Both green claims trained ten times longer (issue 14): the crop walks (three seeds; object crops at 8 and 16
# segments; objcentre8 too), a cell that asks why object crops score low (patchcrop9, two seeds) and the pooled walk
# with and without the GCN (six seeds each), 3000 steps at lr 3e-4, scored along training at 427 px on 15 sequences; rewrites
# results/green-long. Hours in configs/report-green-long.yaml; needs the DAVIS folders. To add a cell or seeds
# without retraining the rest:
# ever report --grid configs/report-green-long.yaml --only CELL --snapshot results/green-long
green-long: $(STAMP)
	$(BIN)/ever report --grid configs/report-green-long.yaml --snapshot results/green-long $(REPORT_ARGS)

# How J&F grows with real training video (issue 33): the shipped recipe through layer3 under bf16 on 3, 18 and 34
# distinct videos, three seeds each, scored at 427 px on 15 sequences; rewrites results/data-scaling and counts
# what each cell trains on (data.csv). Hours in configs/report-data-scaling.yaml; needs the DAVIS folders and
# real-video-extra decoded into data/real-video-extra-frames (`ever data frames`, see the grid file).
data-scaling: $(STAMP)
	$(BIN)/ever report --grid configs/report-data-scaling.yaml --snapshot results/data-scaling $(REPORT_ARGS)
	$(BIN)/python -m ever.analysis.scaling configs/report-data-scaling.yaml results/data-scaling

# A learning-rate check for the object walk with 16 and 32 crops per frame (issue 34): 1000 steps at two lrs,
# one seed, scored on the five tuning sequences at 427 px; rewrites results/objects-lr. Needs the DAVIS folders.
objects-lr: $(STAMP)
	$(BIN)/ever report --grid configs/report-objects-lr.yaml --snapshot results/objects-lr $(REPORT_ARGS)

# On a CUDA machine (issue 32): the reference walk's bf16 training step (clips/s, MFU), propagation at 480p
# (frames/s) and a ten-minute training with its J&F, in one JSON (runs/gpu-check/gpu_check.json); reuse the
# machine's CUDA torch with VENV_FLAGS=--system-site-packages. Without a GPU it runs a reduced form in seconds.
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf _build book/generated runs
