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
