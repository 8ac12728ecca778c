# statekeeper — build, test and run against a local control plane.
#
# Every tool is built from its Go module (or installed from Debian) into a
# versioned directory of $(CACHE), outside the repository, so a second run
# rebuilds nothing and bumping a version builds the new one beside the old.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Versions (override on the command line)

KUBE_VERSION ?= v1.36.3
KWOK_VERSION ?= v0.8.0
HELM_VERSION ?= v4.3.1
KIND_VERSION ?= v0.33.0

CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/statekeeper
KUBE_DIR := $(CACHE)/kube-$(KUBE_VERSION)
KWOK_DIR := $(CACHE)/kwok-$(KWOK_VERSION)
TOOLS_DIR := $(CACHE)/tools
ENVTEST_DIR := $(CACHE)/envtest-$(KUBE_VERSION)

KUBE_APISERVER := $(KUBE_DIR)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(KUBE_DIR)/kube-controller-manager
KUBE_SCHEDULER := $(KUBE_DIR)/kube-scheduler
KWOK := $(KWOK_DIR)/kwok
KWOKCTL := $(KWOK_DIR)/kwokctl
HELM := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
KIND := $(TOOLS_DIR)/kind-$(KIND_VERSION)/kind
# etcd comes from Debian's etcd-server; kubectl from the machine when it has
# one, otherwise it is built from the same wrapper module as the control plane.
ETCD ?= /usr/bin/etcd
# The fault suite's test hosts are network namespaces (iproute2's ip).
IPROUTE ?= $(or $(shell command -v ip 2>/dev/null),/usr/sbin/ip)
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(KUBE_DIR)/kubectl)

# The version stamps Kubernetes' own build scripts set (hack/lib/version.sh);
# without them the binaries report v0.0.0 and clients warn about the skew.
# Keep this recipe's flags stable: the Go build cache then makes a rebuild a
# relink only.
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION)

LOCAL := $(CURDIR)/.local
KUBECONFIG_LOCAL := $(LOCAL)/kubeconfig
BIN := $(CURDIR)/bin
STATEKEEPER := $(BIN)/statekeeper
IMG ?= statekeeper:dev
# Stamped into the binary (internal/cli.version) by `make docker-build`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# What the scripts under hack/ need, passed explicitly rather than found on PATH.
TOOL_ENV := LOCAL=$(LOCAL) KUBECONFIG_LOCAL=$(KUBECONFIG_LOCAL) \
	KUBE_VERSION=$(KUBE_VERSION) KUBE_DIR=$(KUBE_DIR) KWOK_DIR=$(KWOK_DIR) \
	ETCD=$(ETCD) KUBECTL=$(KUBECTL) HELM=$(HELM) STATEKEEPER=$(STATEKEEPER)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: cluster-up build $(HELM) ## Start statekeeper against the local cluster and register its webhooks.
	@$(TOOL_ENV) hack/run.sh start

.PHONY: stop
stop: ## Stop statekeeper and remove its webhook configurations from the local cluster.
	@$(TOOL_ENV) hack/run.sh stop

.PHONY: lint
lint: ## Check formatting (gofmt) and run go vet.
	@unformatted="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	cd hack/measure && go vet ./...
	cd hack/monitoring && go vet ./...
	cd hack/celdiff && go vet ./...

# hack/monitoring and hack/celdiff test the chart's alerts and admission
# policies against Prometheus's and the API server's own libraries, without the
# race detector: their race builds cost minutes, and statekeeper's own code is
# raced in the root module.
.PHONY: test
test: envtest-assets $(HELM) ## Run every test: unit, adapter, chart and integration tests with the race detector, the monitoring and admission-policy modules, then the local e2e and fault suites.
	KUBEBUILDER_ASSETS=$(ENVTEST_DIR) HELM=$(HELM) KUBECTL=$(KUBECTL) go test -race -count=1 -timeout 30m ./...
	cd hack/measure && go test -race -count=1 ./...
	cd hack/monitoring && KUBEBUILDER_ASSETS=$(ENVTEST_DIR) HELM=$(HELM) go test -count=1 ./...
	cd hack/celdiff && KUBEBUILDER_ASSETS=$(ENVTEST_DIR) go test -count=1 ./...
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory faults

# `make test` runs every fuzz target on its seed corpus only; this target
# fuzzes for real: FUZZTIME each (a duration or Nx executions), FUZZ_TARGETS
# a regular expression on "<package> <FuzzName>". FUZZ_TIMEOUT bounds each
# target's run (go test's own default, 10m, cuts a 1000000x run of the
# slower targets short); FUZZ_MINIMIZETIME bounds the minimizing of each new
# input (go test's default, 60s, is most of a fresh corpus's run time).
FUZZTIME ?= 30s
FUZZ_TARGETS ?= .
FUZZ_TIMEOUT ?= 2h
FUZZ_MINIMIZETIME ?= 5s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s) and print the executions reached.
	@LOCAL=$(LOCAL) FUZZTIME=$(FUZZTIME) FUZZ_TARGETS='$(FUZZ_TARGETS)' FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) FUZZ_MINIMIZETIME=$(FUZZ_MINIMIZETIME) hack/fuzz.sh

.PHONY: bench
bench: ## Run the admission handler benchmarks.
	go test -run '^$$' -bench . -benchmem ./internal/webhook/

##@ Build

.PHONY: build
build: ## Build bin/statekeeper.
	CGO_ENABLED=0 go build -trimpath -o $(STATEKEEPER) ./cmd/statekeeper

# One platform, the machine's own: kind loads a single-platform archive
# (hack/e2e-kind.sh), and no registry receives this image.
.PHONY: docker-build
docker-build: ## Build the container image (IMG=statekeeper:dev, VERSION from git; needs a Docker engine).
	docker build --platform linux/$(shell go env GOARCH) --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Local cluster (etcd, kube-apiserver, controller-manager, scheduler and KWOK as local processes)

.PHONY: cluster-up
cluster-up: $(KUBE_APISERVER) $(KWOKCTL) $(ETCD) $(KUBECTL) ## Start the local cluster (idempotent); kubeconfig in .local/kubeconfig.
	@$(TOOL_ENV) hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Delete the local cluster.
	@$(TOOL_ENV) hack/cluster.sh down

# The e2e suite (e2e/, build tag e2e) installs charts/statekeeper with Helm
# into the cluster KUBECONFIG names and drives it with kubectl. On the local
# cluster KWOK runs no containers, so the suite runs STATEKEEPER as a local
# process with the chart Deployment's flags, impersonating the chart's
# ServiceAccount, and cert-manager's issuance and CA injection as another
# (CERT_MANAGER, built from its Go module by hack/certmanager), with its CRDs
# applied from the same module. On kind (hack/e2e-kind.sh) the chart's
# Deployment serves the image E2E_IMAGE and cert-manager runs from its
# release manifest.
CERT_MANAGER_VERSION ?= v1.21.2
CERT_MANAGER_DIR := $(CACHE)/cert-manager-$(CERT_MANAGER_VERSION)
CERT_MANAGER_CRDS := $(CERT_MANAGER_DIR)/crds
CERT_MANAGER := $(CERT_MANAGER_DIR)/certmanager
KIND_CLUSTER ?= statekeeper
# The node image of kind $(KIND_VERSION)'s release notes closest to the local
# cluster's Kubernetes ($(KUBE_VERSION)) and inside cert-manager v1.21's
# tested range (1.33 to 1.36); kind's own default (1.37) is outside it. The
# digest pins the build made for this kind release.
KIND_NODE_IMAGE ?= kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed
KIND_KUBECONFIG := $(LOCAL)/kind-kubeconfig
E2E_ENV := HELM=$(HELM) KUBECTL=$(KUBECTL) E2E_WORKDIR=$(LOCAL)/e2e
# The tests mostly wait on the cluster's controllers; run more of them at
# once than there are cores.
E2E_TEST := go test -race -tags e2e -count=1 -parallel 8 -timeout 30m ./e2e/

.PHONY: e2e
e2e: cluster-up build $(HELM) $(CERT_MANAGER_CRDS) $(CERT_MANAGER) ## Run the end-to-end suite against the local cluster; leaves the cluster running.
	@# A statekeeper of `make run` would answer beside the one under test.
	@$(TOOL_ENV) hack/run.sh stop 2>/dev/null
	KUBECONFIG=$(KUBECONFIG_LOCAL) STATEKEEPER=$(STATEKEEPER) \
		CERT_MANAGER=$(CERT_MANAGER) CERT_MANAGER_CRDS=$(CERT_MANAGER_CRDS) $(E2E_ENV) \
		$(E2E_TEST)

# The fault suite (test/faults, build tag faults) installs the chart in its
# secret TLS mode and runs its replicas as local processes, each in a network
# namespace of its own (hack/testhost.sh, needs root), routed to through the
# chart's Service; it prints the fault table.
FAULTS_TEST := go test -race -tags faults -count=1 -v -timeout 20m ./test/faults/

.PHONY: faults
faults: cluster-up build $(HELM) $(IPROUTE) ## Run the fault suite (restarts, upgrade, rotation, kills, control-plane restarts, a burst) under load.
	@$(TOOL_ENV) hack/run.sh stop 2>/dev/null
	@# Network namespaces need root: through sudo, keeping Go and its caches.
	$(SUDO) env PATH="$$PATH" HOME="$$HOME" GOPATH="$$(go env GOPATH)" GOCACHE="$$(go env GOCACHE)" \
		KUBECONFIG=$(KUBECONFIG_LOCAL) FAULTS_WORKDIR=$(LOCAL)/faults $(TOOL_ENV) $(FAULTS_TEST)

.PHONY: e2e-kind
e2e-kind: $(KIND) $(HELM) $(KUBECTL) build docker-build ## Run the end-to-end suite on a kind cluster with cert-manager (needs Docker).
	KIND=$(KIND) KIND_CLUSTER=$(KIND_CLUSTER) KIND_NODE_IMAGE=$(KIND_NODE_IMAGE) KIND_KUBECONFIG=$(KIND_KUBECONFIG) \
		KUBECTL=$(KUBECTL) IMG=$(IMG) IMG_PLATFORM=linux/$(shell go env GOARCH) IMG_ARCHIVE=$(LOCAL)/kind-image.tar \
		CERT_MANAGER_VERSION=$(CERT_MANAGER_VERSION) hack/e2e-kind.sh
	KUBECONFIG=$(KIND_KUBECONFIG) E2E_IMAGE=$(IMG) STATEKEEPER=$(STATEKEEPER) $(E2E_ENV) $(E2E_TEST)

# cert-manager's CRDs from its Go module (plain YAML in deploy/crds), cached
# beside the other tools.
$(CERT_MANAGER_CRDS):
	mkdir -p $@.tmp
	dir=$$(cd / && go mod download -json github.com/cert-manager/cert-manager@$(CERT_MANAGER_VERSION) | \
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$dir" && cp "$$dir"/deploy/crds/*.yaml $@.tmp/
	chmod -R u+w $@.tmp
	mv $@.tmp $@

# cert-manager's controllers and CA injector as one local program, from the
# packages of its Go module (hack/certmanager, its own module so that
# cert-manager's dependencies stay out of go.mod). Rebuilt when its source
# changes; the Go build cache makes that a relink.
$(CERT_MANAGER): hack/certmanager/main.go hack/certmanager/go.mod hack/certmanager/go.sum
	@grep -q '^require github.com/cert-manager/cert-manager $(CERT_MANAGER_VERSION)$$\|^	github.com/cert-manager/cert-manager $(CERT_MANAGER_VERSION)$$' hack/certmanager/go.mod || \
		{ echo "hack/certmanager/go.mod does not require cert-manager $(CERT_MANAGER_VERSION) (CERT_MANAGER_VERSION)"; exit 1; }
	cd hack/certmanager && CGO_ENABLED=0 go build -trimpath -o $@ .

##@ Tools (cached in ~/.cache/statekeeper or $XDG_CACHE_HOME/statekeeper)

.PHONY: tools
tools: $(KUBE_APISERVER) $(KWOKCTL) $(HELM) $(ETCD) $(KUBECTL) $(CERT_MANAGER) $(CERT_MANAGER_CRDS) envtest-assets ## Build or install every tool.

# One go install for the three control-plane commands: they share most
# packages, and the build cache makes a second invocation a no-op.
$(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) &:
	cd hack/kube && GOBIN=$(KUBE_DIR) go install -trimpath -ldflags="$(KUBE_LDFLAGS)" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler

$(KUBE_DIR)/kubectl:
	cd hack/kube && GOBIN=$(KUBE_DIR) go install -trimpath -ldflags="$(KUBE_LDFLAGS)" k8s.io/kubernetes/cmd/kubectl

$(KWOK) $(KWOKCTL) &:
	GOBIN=$(KWOK_DIR) go install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION) sigs.k8s.io/kwok/cmd/kwokctl@$(KWOK_VERSION)

# tools/helm points at the current version for tests run without make.
$(HELM):
	GOBIN=$(dir $@) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	ln -sfn $@ $(TOOLS_DIR)/helm

$(KIND):
	GOBIN=$(dir $@) go install sigs.k8s.io/kind@$(KIND_VERSION)

$(IPROUTE):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends iproute2

$(ETCD):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends etcd-server

# envtest wants kube-apiserver, etcd and kubectl side by side in one directory.
.PHONY: envtest-assets
envtest-assets: $(ENVTEST_DIR)/kube-apiserver $(ENVTEST_DIR)/etcd $(ENVTEST_DIR)/kubectl

$(ENVTEST_DIR)/kube-apiserver: $(KUBE_APISERVER)
$(ENVTEST_DIR)/etcd: $(ETCD)
$(ENVTEST_DIR)/kubectl: $(KUBECTL)
$(ENVTEST_DIR)/%:
	mkdir -p $(ENVTEST_DIR)
	ln -sfn $< $@

##@ Measurement

# The measurements are a Go module of their own (hack/measure), so that what
# only they use stays out of statekeeper's go.mod. Each is built into BIN and
# run from here, so that relative paths in the flags mean what they say.
MEASURE_TOOLS := $(BIN)/measure-cachesize $(BIN)/measure-saturation $(BIN)/measure-throughapi
.PHONY: $(MEASURE_TOOLS)
$(MEASURE_TOOLS):
	cd hack/measure && go build -o $@ ./$(patsubst measure-%,%,$(@F))

# Runs statekeeper (leader-elected, no webhook registered) against the local
# cluster and reads its memory before and after 1,000 StatefulSets and 1,000
# Deployments; MEASURE_FLAGS passes more flags (see bin/measure-cachesize -h).
.PHONY: measure-audit
measure-audit: cluster-up build ## Measure the audit with COUNT (5,000) broken workloads in one namespace: pass times, report sizes, memory.
	@$(TOOL_ENV) COUNT=$(or $(COUNT),5000) hack/measure-audit.sh

.PHONY: measure-cache
measure-cache: cluster-up build $(BIN)/measure-cachesize ## Measure the informer caches' memory with 1,000 StatefulSets and Deployments.
	certs/dev-ca.sh $(LOCAL)/measure/certs 127.0.0.1 >/dev/null
	$(BIN)/measure-cachesize --kubeconfig $(KUBECONFIG_LOCAL) --statekeeper $(STATEKEEPER) \
		--cert-dir $(LOCAL)/measure/certs --log $(LOCAL)/measure/statekeeper.log $(MEASURE_FLAGS)

# The same at scale: 10,000 workloads (1,000 StatefulSets, 9,000 Deployments,
# each with an image of its own and a Service, as a cluster's applications)
# and 50,000 pods of the Deployments, which the tool creates itself (Pending,
# never scheduled; hack/measure/cachesize/pods.go).
.PHONY: measure-cache-scale
measure-cache-scale: override MEASURE_FLAGS := --deployments 9000 --pods 50000 --cluster-shaped --observe-timeout 5m --timeout 30m --settle 30s $(MEASURE_FLAGS)
measure-cache-scale: measure-cache ## Measure the informer caches' memory with 10,000 workloads and 50,000 pods.

# Loads statekeeper's /validate and /mutate, a no-op TLS server and
# controller-runtime's no-op webhook with the same StatefulSet CREATE bodies
# (1 KB and 66 KB) over 8 keep-alive connections, 3 interleaved rounds of 4 s
# each; SATURATION_FLAGS passes more flags (--profile-dir DIR writes CPU
# profiles of statekeeper; see bin/measure-saturation -h).
.PHONY: measure-saturation
measure-saturation: cluster-up build $(BIN)/measure-saturation ## Measure admission reviews per second against a no-op TLS server and controller-runtime's no-op webhook.
	certs/dev-ca.sh $(LOCAL)/measure/certs 127.0.0.1 >/dev/null
	$(BIN)/measure-saturation --kubeconfig $(KUBECONFIG_LOCAL) --statekeeper $(STATEKEEPER) \
		--cert-dir $(LOCAL)/measure/certs --log-dir $(LOCAL)/measure $(SATURATION_FLAGS)

# Points the chart's webhook configurations at nothing, controller-runtime's
# no-op webhook, a no-op answering statekeeper's own patches, and this
# statekeeper, in 3 interleaved rounds of a burst of 1,000 managed Deployment
# creates and a steady mix of writes, through the local cluster's API server.
# COMPARE=NAME=PATH measures another statekeeper binary beside this one (an
# older commit's, built in a worktree); SERVING_FLAGS passes more flags (see
# bin/measure-throughapi -h).
.PHONY: measure-serving
measure-serving: cluster-up build $(BIN)/measure-throughapi ## Measure added latency and CPU per 1,000 admissions through the API server.
	certs/dev-ca.sh $(LOCAL)/measure/certs 127.0.0.1 >/dev/null
	$(BIN)/measure-throughapi --kubeconfig $(KUBECONFIG_LOCAL) --helm $(HELM) --cert-dir $(LOCAL)/measure/certs \
		--log-dir $(LOCAL)/measure --statekeeper this=$(STATEKEEPER) $(if $(COMPARE),--statekeeper $(COMPARE)) $(SERVING_FLAGS)
