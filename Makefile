# make demo: set up .venv, then run the demo study on built-in synthetic faces.
# make test: set up .venv, then lint and run the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip's notes about this machine's local package folders are noise; failures still fail.
QUIET := { grep -v 'is ignored' || true; }
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo figures test test-slow lint clean docs
README_FIGURES := region_cell_matrix average_grid difference_incorrect_minus_correct \
	ablation_effects share_enrichment score_distributions evaluation threshold_errors \
	validation validation_cells attributes

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 2>&1 | $(QUIET)
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | $(QUIET)
	# face-alignment (the fan backend) without its opencv-python, which would shadow
	# opencv-python-headless; its other needs come with .[dev]
	$(BIN)/python -m pip install --quiet --no-deps face-alignment==1.5.0 2>&1 | $(QUIET)
	$(BIN)/python -c "import saliency, torch, torchvision, cv2, dlib, face_alignment, timm, transformers"
	touch $(STAMP)

demo: setup
	$(BIN)/saliency demo --out $(DEMO_OUT)

# figures/demo_*.png, shown in the README: the demo study's publication figures at 150 dpi
figures: demo
	$(BIN)/saliency figures --run $(DEMO_OUT)/run --dpi 150
	for f in $(README_FIGURES); do cp $(DEMO_OUT)/run/figures/$$f.png figures/demo_$$f.png; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two pytest-xdist workers of one torch thread each; a file runs whole in one
# worker, the longest first (tests/conftest.py). Bytecode is cached even where the
# environment says not to (PYTHONDONTWRITEBYTECODE): every worker and every process a test
# starts would otherwise compile the package and rewrite the tests' asserts again.
PYTEST = PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q
test: lint
	$(PYTEST) -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

# the trained-model claims that take minutes and the multi-process (torchrun) tests, marked
# slow; CI runs them after `test`, one process at a time (no xdist beside them)
test-slow: setup
	$(PYTEST) -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

# docs/commands.md: the command reference, generated from the configs (a test checks it)
docs: setup
	$(BIN)/python -m saliency.cli.reference docs/commands.md
