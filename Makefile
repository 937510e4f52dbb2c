# PULSE-TWIN: two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.pulse-twin-installed

.PHONY: install browser axe demo test test-fast bench wheel clean

install: $(STAMP)

# torch 2.13.0 comes first so that nothing else pulls a CUDA build.
# openmined-psi 2.0.6 pins protobuf==6.30.2, which breaks Flower's gRPC stack; PULSE-TWIN only uses
# its C++ core (federation/psi.py), so it is installed last, without its dependencies (and taken out
# while the rest resolves, so that its pin does not block a re-install).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) uninstall --quiet --yes openmined-psi 2>/dev/null || true
	$(PIP) install --quiet -e '.[dev,simulation]'
	$(PIP) install --quiet --no-deps openmined-psi==2.0.6
	touch $@

demo: install
	$(VENV)/bin/pulse-twin demo

# Headless Chromium (Debian package) for the tests that open the report as a person would. Installed with
# apt-get only when missing and when running as root; otherwise those tests fail, naming what is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "make browser: chromium is missing; install the Debian package 'chromium' as root" >&2; fi; }

# axe-core (npm) for the accessibility check of the twin's page (tests/integration/test_twin_browser.py), in
# .cache/axe; PULSE_TWIN_AXE points elsewhere. Needs npm (the Debian package) and its registry.
AXE_VERSION ?= 4.10.3
axe: .cache/axe/node_modules/axe-core/axe.min.js
.cache/axe/node_modules/axe-core/axe.min.js:
	@command -v npm >/dev/null 2>&1 || { echo "make axe: npm is missing; install the Debian package 'npm'" >&2; exit 1; }
	npm install --no-save --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION)

# pytest exits 5 when it collected no tests: that is a failure, said so in words. The tests run in
# $(TEST_WORKERS) parallel workers (pytest-xdist): the engine tier mostly waits on Flower's processes and
# heartbeats, so more workers than cores pays; TEST_WORKERS=0 runs them one after another in one process.
TEST_WORKERS ?= 3
test: install browser axe
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

# The unit and integration tiers only (no real Flower processes): minutes, for the edit-test loop.
test-fast: install axe
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests/unit tests/integration; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-fast: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

bench: install
	$(PY) -m benchmarks

# The wheel, in $(WHEEL_DIR): the packages with their package data (the CBS files, the synthetic profiles) and,
# copied in by setup.py, pyproject.toml and configs/. Built offline with the venv's setuptools (after `make
# install`); build/ goes first so that no module of an earlier build slips into the wheel.
# tests/engine/test_wheel_install.py installs it into a fresh venv and runs `pulse-twin demo` from an empty directory.
WHEEL_DIR ?= dist
wheel:
	rm -rf build
	$(PIP) wheel --quiet --no-deps --no-build-isolation --wheel-dir $(WHEEL_DIR) .

clean:
	rm -rf data runs .pytest_cache build dist
