# Two entry points: `make run` and `make test`. Everything else is a step they depend on.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bootstrapped
DEV_STAMP := $(VENV)/.dev-tools
# Installed before the lock, pinned apart: an unpinned torch pulls a CUDA build of several GB.
TORCH := torch==2.13.0
# Debian packages the tests need (dciodvfy checks every DICOM object we write; chromium runs
# the dashboard's browser test through Playwright, which must not download its own browser;
# Pango and a font let WeasyPrint render the PDF documents; Orthanc with its DICOMweb plugin is
# the hospital PACS peer of the integration tests, over DICOMweb and DIMSE).
TEST_DEB_PACKAGES := dicom3tools chromium libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
	orthanc orthanc-dicomweb rsyslog rsyslog-gnutls
REPORTS := var/test-reports

.PHONY: run test demo bootstrap system-packages lock lint

# The clinical service with the embedded defaults on DC_HOST:DC_PORT (127.0.0.1:8000), or
# `make run PORT=8080` (README: example session).
PORT ?=
run: $(STAMP)
	$(BIN)/digital-contrast serve $(if $(PORT),--port $(PORT))

# The README's example session against the service `make run` started (stops at a refusal).
demo: $(STAMP)
	bash scripts/demo_session.sh

test: $(DEV_STAMP) system-packages
	@mkdir -p $(REPORTS)
	$(BIN)/ruff check device tests bench scripts
	$(BIN)/python -m pytest --junitxml=$(REPORTS)/junit.xml \
		--req-map=$(REPORTS)/requirements-map.json
	# Every gap in the technical file fails the build, on the junit this run has just written.
	$(BIN)/digital-contrast qms check --junit $(REPORTS)/junit.xml
	# ... and every rule of that check is shown to catch the fault it exists for.
	$(BIN)/digital-contrast qms mutate --junit $(REPORTS)/junit.xml

bootstrap: $(STAMP)

# The runtime closure only (what `make run` needs); re-runs only when it or the project
# metadata changed.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation --editable .
	@touch $(STAMP)

# The test and technical-file tools on top (pytest, ruff, WeasyPrint, CycloneDX...).
$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock \
		-r requirements-dev.lock
	@touch $(DEV_STAMP)

system-packages:
	@missing=$$(for p in $(TEST_DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages: $$missing (run as root)"; exit 1; fi; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Maintainers: refresh both locks from a working venv (torch and CUDA wheels stay out): the
# runtime closure of [project] dependencies, and the tools beyond it.
lock: $(DEV_STAMP)
	$(BIN)/python -m pip freeze --all --exclude-editable \
		| grep -v -i -E '^(torch|triton|pip)(==| @)|^nvidia-(cu|nccl|nvjitlink|nvtx|nvshmem)' \
		| $(BIN)/python scripts/write_locks.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check device tests bench scripts
