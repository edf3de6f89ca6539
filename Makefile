# The two commands a newcomer needs: `make up` (start the enclave) and `make test` (run every test).
# Both install what they need on a fresh Debian 12 host (run as root).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: up test bench venv system system-test lock clean

$(BIN)/enclave: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

venv: $(BIN)/enclave

system:
	scripts/ensure-system.sh

system-test:
	scripts/ensure-system.sh test

up: system venv
	$(BIN)/enclave init
	$(BIN)/enclave image ensure
	$(BIN)/enclave demo --if-empty
	$(BIN)/enclave up

# The layering contract (.importlinter) first; the notebook image is built (or found current) once
# before the tests that start containers.
test: system-test venv
	$(BIN)/lint-imports
	$(BIN)/enclave image ensure
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: system-test venv
	$(BIN)/python -m bench

# Regenerate constraints.txt from a fresh resolve of pyproject.toml's dependencies.
lock:
	rm -rf /tmp/enclave-lock && $(PY) -m venv /tmp/enclave-lock
	/tmp/enclave-lock/bin/pip install -q '.[test]'
	( echo '# Exact versions for the venv, the images and CI (pip install -c constraints.txt). Regenerate with `make lock`.'; \
	  /tmp/enclave-lock/bin/pip freeze --exclude-editable | grep -v '^research-enclave' ) > constraints.txt

clean:
	rm -rf $(VENV) node_modules
