# The two commands of the README:
#   make demo   the local embedded default: control plane + emulator + operator + a sample endpoint
#   make test   the whole test suite against real local parts
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint crd lock bootstrap control-plane helm bench clean

bootstrap:
	scripts/bootstrap.sh

control-plane:
	scripts/build-control-plane.sh

helm:
	scripts/build-helm.sh

demo:  ## the whole operator locally, offline: control plane, emulator, operator, a MiniLM endpoint
	scripts/demo.sh $(ARGS)

test:
	scripts/test.sh

lint: bootstrap
	$(BIN)/ruff check operator kit tests bench
	$(BIN)/ruff format --check operator kit tests bench
	$(BIN)/mypy

# Every copy of the CRD: the package data (what `djl-operator crd` prints and the image ships)
# and the copies kustomize, Helm and kubeconform read (each tool refuses files outside its folder).
CRD_COPIES := crds/djlendpoint.yaml manifests/crds/djlendpoint.yaml charts/djl-operator-crds/files/djlendpoint.yaml
crd: bootstrap
	$(BIN)/djl-operator crd --generate -o operator/djl_operator/crds/djlendpoint.yaml
	for copy in $(CRD_COPIES); do cp operator/djl_operator/crds/djlendpoint.yaml $$copy; done
	cp manifests/crds/kopf-peering.yaml charts/djl-operator-crds/files/kopf-peering.yaml
	$(BIN)/djl-operator crd --json-schema -o schemas/serving.djl-operator.io/djlendpoint_v1alpha1.json

# Re-resolve every dependency (newest allowed versions) into requirements.lock; then run
# `make crd` and `make test`, and commit the lock with whatever they changed.
lock:
	scripts/lock.sh

bench: bootstrap
	$(BIN)/python bench/operator.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
