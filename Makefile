# The two commands of the README: `make run` and `make test` (plus `make health`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SERVICES := iam chainfire flaredb plasmavmc k8shost creditservice prismnet
PACKAGES := shared protos $(addprefix services/,$(SERVICES))
STAMP := $(VENV)/.installed

.PHONY: run test health protos install clean

install: $(STAMP)

# (Re)install when a package's metadata or the pins change.
$(STAMP): constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt $(addprefix -e ./,$(PACKAGES))
	touch $@

run: $(STAMP)
	$(PY) scripts/run_platform.py $(SERVICES)

test: $(STAMP)
	$(PY) -m pytest

health:
	$(PYTHON) scripts/health.py

protos: $(STAMP)
	$(PY) protos/generate.py

clean:
	rm -rf $(VENV)
