# The two commands of the README: `make demo` and `make test`. Each bootstraps what it needs.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
SHARED_MODELS ?= ../shared/models
DEMO_OUT ?= out/demo
export QT_QPA_PLATFORM ?= offscreen

.PHONY: bootstrap models demo test lint unit

bootstrap:
	@tools/bootstrap.sh

# Third-party models (YuNet) go into the data home through the project's own installer:
# from a local folder when one is there (offline machines), else from the official URLs.
models: bootstrap
	@if [ -d "$(SHARED_MODELS)" ]; then $(BIN)/dabai-kiosk models fetch --from "$(SHARED_MODELS)"; \
	else $(BIN)/dabai-kiosk models fetch; fi

demo: models
	$(BIN)/dabai-kiosk demo --headless --out $(DEMO_OUT)

lint: bootstrap
	$(BIN)/ruff check kiosk tests tools
	$(BIN)/vermin --target=3.8- --violations --eval-annotations --no-tips --exclude-regex 'kiosk/train/' kiosk

unit: bootstrap
	$(BIN)/python -m pytest

test: lint unit

# The NeMo backends (kiosk/speech/recognizers/nemo.py NemoRecognizer, kiosk/speech/voices/nemo.py NemoVoice) against a real
# NeMo, in a venv of its own (out/nemo-venv: torch + nemo_toolkit[asr,tts], a few GB) so `make test` stays light.
# Each step is skipped when already done; pip's output goes to out/nemo-venv-install.log. torch is installed first
# (NEMO_TORCH; a CPU build from the machine's index) and pinned so NeMo's install never replaces it.
NEMO_VENV ?= out/nemo-venv
NEMO_TORCH ?= torch==2.13.0
NEMO_LOG := out/nemo-venv-install.log
.PHONY: nemo-check
nemo-check:
	@set -e; mkdir -p out; \
	if [ ! -x $(NEMO_VENV)/bin/python ]; then python3 -m venv $(NEMO_VENV); fi; \
	if ! $(NEMO_VENV)/bin/python -c "import torch" >/dev/null 2>&1; then \
		echo "installing $(NEMO_TORCH) into $(NEMO_VENV) (log: $(NEMO_LOG))"; \
		nice $(NEMO_VENV)/bin/pip install --progress-bar off "$(NEMO_TORCH)" >>$(NEMO_LOG) 2>&1; fi; \
	$(NEMO_VENV)/bin/python -c "import torch; print('torch==' + torch.__version__)" > out/nemo-constraints.txt; \
	if ! $(NEMO_VENV)/bin/python -c "import nemo.collections.asr, nemo.collections.tts" >/dev/null 2>&1; then \
		echo "installing nemo_toolkit[asr,tts] (several minutes; log: $(NEMO_LOG))"; \
		nice $(NEMO_VENV)/bin/pip install --progress-bar off -c out/nemo-constraints.txt "nemo_toolkit[asr,tts]" >>$(NEMO_LOG) 2>&1; fi; \
	if ! $(NEMO_VENV)/bin/pip show -q dabai-kiosk pytest >/dev/null 2>&1; then \
		nice $(NEMO_VENV)/bin/pip install --progress-bar off -c out/nemo-constraints.txt -e . pytest >>$(NEMO_LOG) 2>&1; fi
	OMP_NUM_THREADS=1 $(NEMO_VENV)/bin/python -m pytest tests/test_nemo_real.py -q -p no:warnings

# On a Jetson (JetPack 5 or 6): the kiosk as a systemd service, in one command (kiosk/deploy, the system python3,
# standard library only). `sudo make install`; `make install DRY_RUN=1` prints every step and runs none;
# INSTALL_ARGS passes more (e.g. INSTALL_ARGS="--models ../shared/models --with-jetson-utils ~/jetson-utils").
.PHONY: install jetson-deps
install:
	@unset QT_QPA_PLATFORM; python3 -m kiosk.deploy install $(if $(DRY_RUN),--dry-run) $(INSTALL_ARGS)

# CI: pip resolves each JetPack's runtime requirements + constraints (deploy/jetson/) for aarch64 at that JetPack's
# Python (3.8, 3.10) as a dry run that installs nothing, so a pin with no wheel there fails here, not on a device.
jetson-deps: bootstrap
	$(BIN)/python -m kiosk.deploy resolve --out out
