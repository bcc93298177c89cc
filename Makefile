# Two commands do all set-up: `make run` (the main job) and `make test` (the suite).
# They need Python 3.11 or 3.12: the first of python3.12, python3.11 and python3 that is one
# of those builds .venv (or name one: make test PYTHON=/path/to/python3.11).
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))
PYTHON ?= $(firstword $(foreach p,python3.12 python3.11 python3,\
            $(shell command -v $(p) >/dev/null 2>&1 && $(p) -c '$(SUPPORTED)' 2>/dev/null && echo $(p))))

# A .venv made by an unsupported interpreter (or left half-made) is rebuilt, not reused.
ifneq ($(shell $(BIN)/python -c '$(SUPPORTED)' 2>/dev/null && echo ok),ok)
$(STAMP): FORCE
endif

.PHONY: run test fuzz lint bench clean FORCE

$(STAMP): pyproject.toml setup.py
	@if [ -z "$(PYTHON)" ]; then \
	  echo "hwsim needs Python 3.11 or 3.12, and none of python3.12, python3.11 or python3 is one."; \
	  echo "Install one (Debian/Ubuntu: sudo apt-get install python3.11 python3.11-venv;"; \
	  echo "macOS: brew install python@3.12), or name it: make $(MAKECMDGOALS) PYTHON=/path/to/python3.11"; \
	  exit 1; fi
	@$(PYTHON) -c '$(SUPPORTED)' || { echo "PYTHON=$(PYTHON) is not Python 3.11 or 3.12"; exit 1; }
	@if ! $(BIN)/python -c '$(SUPPORTED)' 2>/dev/null; then rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hwsim demo --out reports/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Property-based tests with a large budget: FUZZ_EXAMPLES mutated inputs per format and
# input kind, FUZZ_KILLS kills of `hwsim run` while it overwrites a run folder.
FUZZ_EXAMPLES ?= 2000
FUZZ_KILLS ?= 200
fuzz: $(STAMP)
	HWSIM_FUZZ_PROFILE=hwsim-fuzz HWSIM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HWSIM_FUZZ_KILLS=$(FUZZ_KILLS) \
		$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/fuzz tests/hwsim/test_run_folder.py

lint: $(STAMP)
	$(BIN)/ruff check hwsim workloads tests benchmarks

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) reports .pytest_cache build *.egg-info
