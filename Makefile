# hotline: `make serve` runs the server, `make test` runs the whole suite.
# Both install what they need first (Debian packages, then .venv) and are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hotline-installed
SERVE_ARGS ?=

.PHONY: install serve test test-unit test-integration bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard media_core/*.pyx) tools/install-system-deps.sh
	./tools/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) setup.py -q build_ext --inplace
	touch $(STAMP)

serve: install
	$(VENV)/bin/hotline serve $(SERVE_ARGS)

# The whole suite with the Cython kernels, then the unit tests again on the pure
# twins (HOTLINE_NO_EXTENSIONS=1), as aiohttp's no-extensions job does.
test: install
	$(PY) -m pytest -q -ra
	HOTLINE_NO_EXTENSIONS=1 $(PY) -m pytest -q -ra tests/unit -p no:cacheprovider

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q -ra tests/integration

bench: install
	$(PY) benchmarks/sip_cps.py --quick
	$(PY) benchmarks/media_load.py --quick
	$(PY) benchmarks/kernels.py --quick
	$(PY) benchmarks/asr_ivr.py --quick
	$(PY) benchmarks/store.py --quick
	$(PY) benchmarks/routing.py --quick
	$(PY) benchmarks/search.py --quick

clean:
	rm -rf build *.egg-info media_core/*.so media_core/_*.c $(VENV)
