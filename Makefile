# The two commands of the README:
#   make demo   the local embedded default: control plane + emulator + operator + a sample endpoint
#   make test   the whole test suite against real local parts
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint crd bootstrap control-plane bench clean

bootstrap:
	scripts/bootstrap.sh

control-plane:
	scripts/build-control-plane.sh

demo:  ## the whole operator locally, offline: control plane, emulator, operator, a MiniLM endpoint
	scripts/demo.sh $(ARGS)

test:
	scripts/test.sh

lint: bootstrap
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

crd: bootstrap
	$(BIN)/djl-operator crd -o crds/djlendpoint.yaml
	$(BIN)/djl-operator crd -o manifests/crds/djlendpoint.yaml
	$(BIN)/djl-operator crd --json-schema -o schemas/serving.djl-operator.io/djlendpoint_v1alpha1.json

bench: bootstrap
	$(BIN)/python bench/operator.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
