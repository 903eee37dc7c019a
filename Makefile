# The two commands of the README: `make run` and `make test` (plus `make health`, `make lint`, and
# `make images` for docker/docker-compose.yml).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SERVICES := iam chainfire flaredb plasmavmc k8shost creditservice prismnet
PACKAGES := shared protos $(addprefix services/,$(SERVICES)) sdk
STAMP := $(VENV)/.installed

IMAGE ?= photoncloud/platform:dev
BASE_IMAGE ?= photoncloud/base:bookworm

.PHONY: run test lint health protos install clean images

install: $(STAMP)

# (Re)install when a package's metadata or the pins change. A line per step, and pip's own lines (one
# per package, a progress bar per download on a terminal): the first install takes a minute or more.
$(STAMP): constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@echo "==> [1/3] virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] pip itself"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "==> [3/3] PhotonCloud's packages and their dependencies (the first time: a minute or more)"
	$(PY) -m pip install --progress-bar on -c constraints.txt -r requirements-dev.txt $(addprefix -e ./,$(PACKAGES))
	touch $@
	@echo "==> installed; \`make run\` starts the platform, \`make test\` runs the tests"

run: $(STAMP)
	$(PY) scripts/run_platform.py $(SERVICES)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

health:
	$(PYTHON) scripts/health.py

protos: $(STAMP)
	$(PY) protos/generate.py

# The images docker/docker-compose.yml runs, made with no image registry: a Debian 12 base from
# Debian's mirrors (docker/base-image.sh, made again only when its recipe changes), then the platform
# on it, Python packages from PyPI pinned by constraints.txt (layers cached by the engine). The
# context goes to the engine as a tar of what the image needs; PIP_CERT, when set, is a CA bundle
# pip trusts during the build (a proxy that intercepts TLS). Needs root (mmdebstrap, the engine).
images:
	docker/base-image.sh $(BASE_IMAGE)
	rm -rf build/images/pip && mkdir -p build/images/pip
	if [ -n "$${PIP_CERT:-}" ]; then cp "$$PIP_CERT" build/images/pip/ca.crt; fi
	tar -c --sort=name --exclude=__pycache__ --exclude='*.egg-info' --exclude='services/*/tests' \
	    constraints.txt docker shared protos services build/images/pip \
	  | DOCKER_BUILDKIT=0 docker build --force-rm -f docker/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) -
	docker image ls $(IMAGE)

clean:
	rm -rf $(VENV)
