# One command each: `make demo` (notebooks -> report.pdf + notebook PDFs) and `make test`.
# Every target first sets up the Python environment (VENV) when it is missing or older than pyproject.toml.
# On a GPU node inside the conda env of environment.yml: make full VENV="$CONDA_PREFIX" CELEBA_ROOT=/path

VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.vae-celeba-installed
RUN_DIR ?= runs/demo
LAB_PORT ?= 8888
CELEBA_ROOT ?=

.PHONY: install demo test lint report full lab

install: $(STAMP)

# The stamp is newer than pyproject.toml once the install succeeded, so re-running costs nothing.
$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -e '.[notebooks,dev]'
	touch $@

demo: install
	$(PYTHON) -m vaelib run --profile demo --run-dir runs/demo
	$(PYTHON) -m vaelib overview --run-dir runs/demo --out docs/demo.png

test: install
	$(PYTHON) -m pytest

# What the pre-commit hooks check (.pre-commit-config.yaml): ruff over code and notebooks, notebooks without outputs.
lint: install
	$(PYTHON) -m ruff check vaelib tests benchmarks notebooks
	$(VENV)/bin/nbstripout --verify --keep-id notebooks/*.ipynb

report: install
	$(PYTHON) -m vaelib report --run-dir $(RUN_DIR)

full: install
	@test -n "$(CELEBA_ROOT)" || { echo "make full needs CELEBA_ROOT=/path/to/celeba (see README: Real CelebA)"; exit 2; }
	$(PYTHON) -m vaelib run --profile full --data celeba --celeba-root "$(CELEBA_ROOT)" --run-dir runs/full

lab: install
	$(PYTHON) -m vaelib lab --port $(LAB_PORT)

