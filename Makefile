# Everything a fresh machine with Python 3.11 needs: `make demo` and `make test` each
# create .venv and install the project first (torch 2.13.0 CPU build before the rest,
# so that no multi-GB CUDA build of torch is pulled in).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[testing]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/napari-pix2pix demo --output demo_output

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo_output
