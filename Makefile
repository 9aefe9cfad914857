# Everything a fresh machine with Python 3.11 needs: `make demo` and `make test` each
# create .venv and install the project first (torch 2.13.0 CPU build before the rest,
# so that no multi-GB CUDA build of torch is pulled in).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

# The napari tests need a real OpenGL display: Xvfb with Mesa and Qt's xcb libraries.
SYSTEM_PACKAGES = xvfb xauth libgl1-mesa-dri libgl1 libegl1 libxkbcommon-x11-0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
	libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1

.PHONY: demo test lint install system-deps clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[testing,bioimageio,lint]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/napari-pix2pix demo --output demo_output

system-deps:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

# ruff (lint and format); the import-linter contracts run inside pytest (tests/test_architecture.py)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

test: lint system-deps
	xvfb-run -a -s "-screen 0 1600x1200x24" $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo_output
