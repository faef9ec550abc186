# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint proto bench demo clean

run: $(STAMP)
	$(BIN)/sentiric-media serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

demo: $(STAMP)
	$(BIN)/sentiric-media demo

bench: $(STAMP)
	$(BIN)/python -m bench.loadgen --calls 300

# Regenerates the committed gRPC stubs from the .proto (grpcio-tools is pinned in pyproject).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src \
		--grpc_python_out=src src/sentiric_media/api/v1/media.proto

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
