# The two commands of the README:
#   make reproduce   set up .venv if needed, then run the main job
#   make test        set up .venv if needed, then run the whole test suite
# and, for the edit-test loop: make test-fast (the suite without the tests marked slow)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.i2s-installed
MODEL   ?= auto
PROFILE ?= quick
CHROMIUM ?= /usr/bin/chromium

.PHONY: test test-fast reproduce rehearse venv clean-venv

venv: $(STAMP)

# Re-installs whenever pyproject.toml changes. torch/torchvision are pinned there.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $(STAMP)

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q --durations=15

# Everything but the tests marked @pytest.mark.slow (the notebooks, the browser, ...): docs/setup.md.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The browser test (tests/test_browser.py) drives Debian's Chromium with Playwright.
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test (apt-get)"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

# The main job: notebooks/01-07 through papermill (executed copies in runs/$(PROFILE)/), figures in
# figures/<model>/ (other profiles and networks: figures/<model>/<run>/), numbers in
# results/<model>/$(PROFILE)/ and REPORT.md there.
# `make reproduce PROFILE=paper MODEL=ffhq DEVICE=cuda` is the paper's protocol on a GPU.
# `make reproduce PERCEPTUAL=efficientnet-lite0`: the loss on the offline ImageNet network, in
# results/<model>/$(PROFILE)-efficientnet-lite0/ (REPORT.md's sensitivity table compares the two).
DEVICE ?= cpu
PERCEPTUAL ?= auto
# On a CPU two notebooks run side by side with a thread each (measured: one thread per notebook
# loses little against two, so the pair finishes well before the same notebooks one after the other).
JOBS ?= $(if $(filter cpu,$(DEVICE)),2,1)
reproduce: $(STAMP)
	$(BIN)/python scripts/run_notebooks.py --profile $(PROFILE) --model $(MODEL) --device $(DEVICE) --perceptual $(PERCEPTUAL) --jobs $(JOBS) --check

# The paper tier's path rehearsed on this CPU with random weights (scripts/rehearse.py): a Google-Drive-like
# loopback server, i2s weights fetch, conversion, the seven notebooks at the paper profile with STEPS
# Adam steps per embedding, i2s edit; results/rehearsal/. Not part of `make test` (tens of minutes).
STEPS ?= 1
PER_CLASS ?= 2
rehearse: $(STAMP)
	$(BIN)/python scripts/rehearse.py --steps $(STEPS) --per-class $(PER_CLASS)

clean-venv:
	rm -rf $(VENV)
