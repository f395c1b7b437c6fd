# chatface — every target installs what it needs first (make setup is idempotent).
# Pass config overrides with ARGS="key=value ...", e.g. make train ATTR=smile ARGS="mapper.max_steps=50".

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/chatface
STAMP  := $(VENV)/.installed
WORLD  ?= synth
ATTR   ?= curly_hair
ARGS   ?=
IMAGE  ?=
EDITS  ?=
REQUEST ?=
TRIALS ?=
WORKERS ?=
STORAGE ?=
PORT   ?= 5000
CONFIG := world=$(WORLD) $(ARGS)

.PHONY: help setup test test-fast bench bench-gpu preview pretrain-backbone pretrain-backbone-encoder \
        pretrain-backbone-resnet pretrain-backbone-walk eval-backbone backbone-preview pretrain-judges eval-judges \
        train eval-mapper grid edit chat sweep ui leaderboard clean

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

bench: setup  ## speed: SynthFace rendering, backbone latency, mapper training, leaderboard budget, sweep workers
	$(PY) benchmarks/synthface_throughput.py
	$(PY) benchmarks/backbone_speed.py
	$(PY) benchmarks/mapper_training.py
	$(PY) benchmarks/leaderboard_budget.py
	$(PY) benchmarks/sweep_workers.py

bench-gpu: setup  ## the ffhq256 world on a CUDA GPU (random weights): latent caching, mapper training, editing
	$(PY) benchmarks/ffhq256_gpu.py

preview: setup  ## PNG grid of SynthFace faces, class maps and captions -> runs/preview/
	$(CLI) synth preview $(CONFIG)

# The stage-2 synth backbone: stage 1 learns to denoise; stage 2 fine-tunes it with a probe that makes z_sem hold
# the SynthFace labels (weights/synth/backbone.md says why).
BACKBONE_STAGE1 := backbone.preset=synth64 backbone.pretrain.max_steps=1500 \
	backbone.weights=runs/backbone/synth-stage1.safetensors
BACKBONE_STAGE2 := backbone.preset=synth64 backbone.pretrain.run_name=backbone-finetune \
	backbone.pretrain.init_weights=runs/backbone/synth-stage1.safetensors backbone.pretrain.attribute_weight=0.2 \
	backbone.pretrain.max_steps=1200 backbone.pretrain.lr=2e-4 backbone.pretrain.warmup_steps=50 data.batch_size=16 \
	backbone.weights=weights/synth/backbone.safetensors
# Stage 3 (shipped, weights/synth/backbone.md): the stage-2 denoiser under a new ResNet encoder
# that sees a smile; the encoder first trains alone on the probe, then the denoiser learns to follow it.
BACKBONE_STAGE3 := backbone.preset=synth64_resnet backbone.pretrain.run_name=backbone-encoder \
	backbone.pretrain.init_weights=weights/synth/backbone.safetensors backbone.pretrain.init_encoder=false \
	backbone.pretrain.attribute_weight=1.0 backbone.pretrain.edit_weight=1.0 backbone.pretrain.encoder_lr_scale=5 \
	backbone.pretrain.encoder_warmup_steps=1500 backbone.pretrain.max_steps=2500 backbone.pretrain.lr=2e-4 \
	backbone.pretrain.warmup_steps=50 data.batch_size=16 backbone.weights=weights/synth/backbone-stage3.safetensors
# From scratch with the ResNet encoder (weights/synth/backbone.md, session 14): stage 3's denoiser, grown up under an
# encoder that missed a smile, does not draw one from z_sem; this one learns to draw from a z_sem that holds the labels.
BACKBONE_RESNET := backbone.preset=synth64_resnet backbone.pretrain.run_name=backbone-resnet \
	backbone.pretrain.attribute_weight=1.0 backbone.pretrain.edit_weight=3.0 backbone.pretrain.edit_min_t=500 \
	backbone.pretrain.encoder_lr_scale=3 backbone.pretrain.encoder_warmup_steps=1500 backbone.pretrain.max_steps=6000 \
	data.batch_size=16 backbone.weights=runs/backbone-resnet/synth.safetensors
# The default (weights/synth/backbone.md, session 21): the shipped ResNet backbone's denoiser fine-tuned on the walk an
# edit takes (invert a face, decode it with the z_sem of its twin with one attribute flipped, match the twin).
BACKBONE_WALK := backbone.preset=synth64_resnet backbone.pretrain.run_name=backbone-walk \
	backbone.pretrain.init_weights=weights/synth/backbone-resnet.safetensors backbone.pretrain.encoder_lr_scale=0 \
	backbone.pretrain.trajectory_weight=1.0 backbone.pretrain.trajectory_faces=8 backbone.pretrain.lr=1e-4 \
	backbone.pretrain.warmup_steps=20 backbone.pretrain.ema_decay=0.99 backbone.pretrain.max_steps=750 \
	data.batch_size=8 backbone.weights=weights/synth/backbone-walk.safetensors

pretrain-backbone: setup  ## the stage-2 synth backbone, two stages (each resumes) -> weights/synth/backbone.safetensors
	$(CLI) pretrain backbone $(BACKBONE_STAGE1) $(CONFIG)
	$(CLI) pretrain backbone $(BACKBONE_STAGE2) $(CONFIG)

pretrain-backbone-encoder: setup  ## stage 3: a ResNet encoder under the stage-2 denoiser -> weights/synth/
	$(CLI) pretrain backbone $(BACKBONE_STAGE3) $(CONFIG)

pretrain-backbone-resnet: setup  ## synth backbone: ResNet encoder, from scratch, edit-following (resumes)
	$(CLI) pretrain backbone $(BACKBONE_RESNET) $(CONFIG)

pretrain-backbone-walk: setup  ## the default synth backbone: the ResNet one trained on edit walks (resumes)
	$(CLI) pretrain backbone $(BACKBONE_WALK) $(CONFIG)

eval-backbone: setup  ## PSNR of reconstructions and semantic decodings on 256 held-out faces, oracle edits (JSON)
	$(CLI) eval backbone --json $(CONFIG)

backbone-preview: setup  ## PNG: inputs, reconstructions, semantic decodings, interpolation -> runs/preview/
	$(CLI) backbone preview $(CONFIG)

# The recogniser learns from more people than the other judges need (8,000 identities x 6 faces, its own cache).
JUDGES_IDENTITY := judges.pretrain.train_identities=8000 judges.pretrain.train_faces=48000

pretrain-judges: setup  ## train the synth judges (resumes), export weights/synth/{clip,identity,parser,attributes}
	$(CLI) pretrain judges --only clip,parser,attributes $(CONFIG)
	$(CLI) pretrain judges --only identity $(JUDGES_IDENTITY) $(CONFIG)

eval-judges: setup  ## quality of the synth judges on held-out identities (JSON)
	$(CLI) eval judges --json $(CONFIG)

train: setup  ## train the mapper of ATTR (resumes), log it to MLflow -> runs/mappers/<world>/<attr>/
	$(CLI) train attr=$(ATTR) $(CONFIG)

eval-mapper: setup  ## edit_success, leakage, id, sc, sdir of the mapper of ATTR on held-out faces (JSON)
	$(CLI) eval mapper --json attr=$(ATTR) $(CONFIG)

grid: setup  ## PNG of the mapper of ATTR over strength and step count
	$(CLI) grid attr=$(ATTR) $(CONFIG)

edit: setup  ## edit IMAGE with EDITS="smile:1.0,glasses:0.8" or REQUEST="make her smile and add glasses"
	@test -n "$(IMAGE)" || { echo 'give an image: make edit IMAGE=face.png EDITS="smile:1.0"' >&2; exit 2; }
	$(CLI) edit "$(IMAGE)" $(if $(REQUEST),--request "$(REQUEST)",--edits "$(EDITS)") $(CONFIG)

chat: setup  ## chat to edit IMAGE turn by turn
	@test -n "$(IMAGE)" || { echo 'give an image: make chat IMAGE=face.png' >&2; exit 2; }
	$(CLI) chat "$(IMAGE)" $(CONFIG)

sweep: setup  ## Optuna sweep of ATTR [TRIALS=n WORKERS=k STORAGE=url] (resumes), registers the best mapper
	$(CLI) sweep attr=$(ATTR) $(if $(TRIALS),sweep.trials=$(TRIALS)) $(if $(WORKERS),sweep.workers=$(WORKERS)) \
		$(if $(STORAGE),sweep.storage=$(STORAGE)) $(CONFIG)

ui: setup  ## MLflow UI on http://127.0.0.1:PORT (default 5000) to compare trials and attributes
	$(CLI) ui --port $(PORT) $(CONFIG)

leaderboard: setup  ## ChatFace vs StyleCLIP, DiffusionCLIP, Asyrp [ATTRS=smile,glasses N=30 faces] -> runs/leaderboard/
	$(CLI) leaderboard $(if $(ATTRS),leaderboard.attrs=[$(ATTRS)]) $(if $(N),leaderboard.faces=$(N)) $(CONFIG)

clean:  ## remove outputs in runs/ (keeps the virtualenv and shipped weights)
	find runs -mindepth 1 ! -name README.md -exec rm -rf {} +
