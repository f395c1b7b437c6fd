# chatface — every target installs what it needs first (make setup is idempotent).
# Pass config overrides with ARGS="key=value ...", e.g. make pretrain-backbone ARGS="backbone.pretrain.max_steps=500".

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/chatface
STAMP  := $(VENV)/.installed
WORLD  ?= synth
ATTR   ?= curly_hair
ARGS   ?=
CONFIG := world=$(WORLD) $(ARGS)

.PHONY: help setup test test-fast bench preview pretrain-backbone eval-backbone backbone-preview \
        pretrain-judges train edit chat sweep ui leaderboard clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install chatface (editable) with pinned dependencies

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: setup  ## the whole test suite (slow end-to-end tests included)
	$(PY) -m pytest -q

test-fast: setup  ## the test suite without the slow end-to-end tests
	$(PY) -m pytest -q -m "not slow"

bench: setup  ## speed benchmarks: SynthFace rendering, backbone latency
	$(PY) benchmarks/synthface_throughput.py
	$(PY) benchmarks/backbone_speed.py

preview: setup  ## PNG grid of SynthFace faces, class maps and captions -> runs/preview/
	$(CLI) synth preview $(CONFIG)

pretrain-backbone: setup  ## train the synth backbone (resumes), export weights/synth/backbone.safetensors
	$(CLI) pretrain backbone $(CONFIG)

eval-backbone: setup  ## PSNR of reconstructions and semantic decodings on 256 held-out faces (JSON)
	$(CLI) eval backbone --json $(CONFIG)

backbone-preview: setup  ## PNG: inputs, reconstructions, semantic decodings, interpolation -> runs/preview/
	$(CLI) backbone preview $(CONFIG)

pretrain-judges train edit chat sweep ui leaderboard: setup
	@echo "make $@ is not built yet: see 'issues' (judges #4, mappers #5, sweep/ui #6, leaderboard #7, chat #8)." >&2
	@exit 1

clean:  ## remove outputs in runs/ (keeps the virtualenv and shipped weights)
	find runs -mindepth 1 ! -name README.md -exec rm -rf {} +
