# The two commands of the README:
#   make reproduce   set up .venv if needed, then run the main job
#   make test        set up .venv if needed, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.i2s-installed
MODEL  ?= auto
STEPS  ?= 5000
OUT    ?= results/cli-embed

.PHONY: test reproduce venv clean-venv

venv: $(STAMP)

# Re-installs whenever pyproject.toml changes. torch/torchvision are pinned there.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Until the notebooks exist, the main job embeds the evaluation faces (FFHQ-aligned) with the
# paper's defaults into the generator `auto` picks (official FFHQ if cached, else mini).
reproduce: $(STAMP)
	$(BIN)/i2s embed data/i2s-eval/faces/*.jpg --align --model $(MODEL) --steps $(STEPS) --out $(OUT)

clean-venv:
	rm -rf $(VENV)
