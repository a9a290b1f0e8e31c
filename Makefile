# The two commands of the README: `make train` and `make test`. `make setup` is idempotent and
# reinstalls only when pyproject.toml changes.
PYTHON ?= python3
# A CPU build of this torch is what these machines have locally; an unpinned torch pulls CUDA wheels.
TORCH ?= torch==2.13.0
# gym-duckietown's own packages, installed without their dependencies (see the `duckietown` extra).
DUCKIETOWN := duckietown-gym-daffy==6.1.34 duckietown-world-daffy==6.4.3 aido-protocols-daffy==6.1.1 zuper-nodes-z6==6.2.17
# What Duckietown-v0 needs from the system: EGL and GL for the simulator, GLib for OpenCV.
GL_LIBS := libegl1 libgl1 libglu1-mesa libegl-mesa0 libgl1-mesa-dri libglib2.0-0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup system-libs train test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,duckietown]"
	$(BIN)/python -m pip install -q --no-deps $(DUCKIETOWN)
	touch $(STAMP)

# As root (CI): the system libraries Duckietown-v0 needs; installed ones are left alone.
system-libs:
	dpkg -s $(GL_LIBS) >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $(GL_LIBS); }

train: setup
	$(BIN)/ddpg train $(ARGS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
