# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEFAULT_BOT ?= domains/restaurant
MODEL := models/$(notdir $(DEFAULT_BOT)).model
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): one per core, at most 4 (each trains models and opens
# PostgreSQL connections of its own). `make test TEST_WORKERS=0` runs the tests in this process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)

.PHONY: demo shell test test-py310 lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build lies on the machine's disk; anything looser downloads CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Trained again when a file of the bot changes (training reuses the parts that did not).
BOT_FILES := $(shell find $(DEFAULT_BOT) -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.json' \) -not -path '*/.chatbot/*' 2>/dev/null)

$(MODEL): $(STAMP) $(BOT_FILES)
	$(BIN)/chatbot train --project $(DEFAULT_BOT) --out $(MODEL)

demo: $(MODEL)
	$(BIN)/chatbot run --project $(DEFAULT_BOT) --model $(MODEL) --host 127.0.0.1 --port 5005

shell: $(MODEL)
	$(BIN)/chatbot shell --project $(DEFAULT_BOT) --model $(MODEL)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

# Python 3.10, the oldest we support. This machine has PyTorch's CPU build for 3.11 only (PyPI's
# torch is a multi-GB CUDA build), so the project goes in without torch, and the tests that need
# it (training) are reported as skipped; everything else must pass (tests/conftest.py).
PYTHON310 ?= python3.10
VENV310 := .venv310
STAMP310 := $(VENV310)/.installed

$(STAMP310): pyproject.toml $(STAMP)
	test -x $(VENV310)/bin/python || $(PYTHON310) -m venv $(VENV310)
	$(BIN)/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(d for d in p["dependencies"] + p["optional-dependencies"]["dev"] \
	if not d.startswith("torch")))' > $(VENV310)/requirements.txt
	$(VENV310)/bin/pip install --quiet -r $(VENV310)/requirements.txt
	$(VENV310)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP310)

# A test skipped for want of torch stopped half-way, and may leave a socket to the garbage
# collector, whose warning would then fail whichever test runs next: resource warnings are
# not errors here (`make test` still fails on them).
test-py310: $(STAMP310)
	CHATBOT_TESTS_WITHOUT_TORCH=1 $(VENV310)/bin/python -m pytest -q -p no:cacheprovider \
	-n $(TEST_WORKERS) -W ignore::pytest.PytestUnraisableExceptionWarning -W ignore::ResourceWarning

lint: $(STAMP)
	$(BIN)/ruff check chatbot connectors training tests
	$(BIN)/ruff format --check chatbot connectors training tests

clean:
	rm -rf models .pytest_cache
