# coderun: a Kubernetes operator that runs untrusted Python snippets in locked-down Jobs.
# Targets follow kubebuilder's conventions; `make help` lists them.

IMG_TAG ?= 0.1.0
RUNNER_IMG ?= localhost/coderun-python:$(IMG_TAG)
OPERATOR_IMG ?= localhost/coderun-operator:$(IMG_TAG)
FRONT_IMG ?= localhost/coderun-front:$(IMG_TAG)
# What every language image is built FROM (images/base): Debian, the runner user, no setuid.
BASE_IMG ?= localhost/coderun-base:$(IMG_TAG)
# The language images: every images/<name>/ but base, operator and front, each one a Runtime
# in the chart (runtimes.available.<name>), tagged localhost/coderun-<name>:$(IMG_TAG).
ALL_RUNTIMES := $(filter-out base operator front,$(patsubst images/%/Dockerfile,%,$(wildcard images/*/Dockerfile)))
# The runtimes make dev builds, loads and enables: a comma-separated list of names
# (RUNTIMES=python,c,go) or all (RUNTIMES=all). Unset, make dev keeps those of the running
# local cluster (python on a new one). make images-runtimes builds every one unless set.
RUNTIMES ?=
comma := ,
RUNTIME_NAMES = $(if $(filter all,$(RUNTIMES)),$(ALL_RUNTIMES),$(subst $(comma), ,$(RUNTIMES)))

# Tool versions, pinned. controller-tools v0.23 matches controller-runtime v0.25 / k8s.io v0.37.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
KUBE_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.7.3

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBE_BIN_DIR ?= $(LOCALBIN)/k8s/$(KUBE_VERSION)
KIND_VERSION ?= v0.33.0
KIND ?= $(LOCALBIN)/kind-$(KIND_VERSION)
KIND_CLUSTER ?= coderun
HELM_VERSION ?= v4.3.1
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
HELM_DOCS_VERSION ?= v1.14.2
HELM_DOCS ?= $(LOCALBIN)/helm-docs-$(HELM_DOCS_VERSION)
CHART ?= charts/coderun

# The local cluster (hack/local-cluster.sh) keeps all its state in .dev/.
DEV_KUBECONFIG ?= $(CURDIR)/.dev/kubeconfig
DEV_WEB_PORT ?= 8080
export KUBE_VERSION ETCD_VERSION KUBE_BIN_DIR IMG_TAG DEV_WEB_PORT

GO ?= go
# buildah here (no Docker engine); CONTAINER_TOOL=docker CONTAINER_BUILD=build elsewhere.
CONTAINER_TOOL ?= buildah
CONTAINER_BUILD ?= bud --runtime runc --network host
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests in config/ from the Go markers, and copy them into the chart.
	$(CONTROLLER_GEN) rbac:roleName=operator crd paths="{./api/...,./controllers/...}" output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The chart ships the same files: the CRD in crds/, the operator's rules in files/.
	rm -f $(CHART)/crds/*.yaml && cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/operator-role.yaml

.PHONY: chart-docs
chart-docs: helm-docs ## Write the chart's README and the README's configuration table from values.yaml.
	hack/chart-docs.sh $(HELM_DOCS)

.PHONY: generate
generate: controller-gen ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

# Files controller-gen and helm-docs write. verify-generated fails when regenerating changes
# them, so a stale CRD, role, deepcopy or values table never lands (uncommitted edits
# elsewhere do not matter).
GENERATED_FILES = find config/crd/bases config/rbac/role.yaml api $(CHART)/crds $(CHART)/files $(CHART)/README.md README.md -name '*.yaml' -o -name 'zz_generated.*.go' -o -name README.md

.PHONY: verify-generated
verify-generated: controller-gen helm-docs ## Fail if the generated files are stale.
	@before="$$($(GENERATED_FILES) | sort | xargs sha256sum)"; \
	$(MAKE) -s manifests generate chart-docs; \
	after="$$($(GENERATED_FILES) | sort | xargs sha256sum)"; \
	if [ "$$before" != "$$after" ]; then \
		echo "Generated files were stale; 'make manifests generate chart-docs' updated them - review and commit:"; \
		diff <(echo "$$before") <(echo "$$after") || true; exit 1; fi
	@echo "generated files are up to date"

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: verify-fmt
verify-fmt: ## Fail if any Go file is not gofmt-formatted.
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

.PHONY: verify-tidy
verify-tidy: ## Fail if go.mod or go.sum are not tidy.
	$(GO) mod tidy -diff

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (.golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: verify-generated verify-fmt verify-tidy vet lint lint-chart envtest-assets test-web ## Check generated files and lint, then run the page's, chart's, unit, runner and envtest suites.
	@# The store's tests also run on Postgres: a throw-away server on 127.0.0.1 (hack/postgres.sh).
	@# The chart's tests (test/chart) render it with this Helm.
	@# CODERUN_TEST_REQUIRE_ALL=1: a test that lacks root, python3, Helm or a database fails
	@# instead of skipping (internal/testneed), so a missing install step cannot pass CI.
	pg="$$(hack/postgres.sh start)"; trap 'hack/postgres.sh stop' EXIT; \
	KUBEBUILDER_ASSETS="$(KUBE_BIN_DIR)" CODERUN_TEST_POSTGRES="$$pg" HELM="$(HELM)" CODERUN_TEST_REQUIRE_ALL=1 \
		$(GO) test ./... -race -count=1 -timeout 20m

.PHONY: unit
unit: ## Run the Go tests that need no API server, database or Helm (go test -short), in seconds.
	$(GO) test -short -count=1 ./...

# Values files the chart is linted with besides its defaults: one per shape of install.
CHART_CI_VALUES = $(wildcard $(CHART)/ci/*-values.yaml) hack/dev-values.yaml

.PHONY: lint-chart
lint-chart: helm ## helm lint --strict the chart with its default values and each of $(CHART)/ci/*-values.yaml.
	$(HELM) lint --strict $(CHART)
	@for f in $(CHART_CI_VALUES); do echo "$(HELM) lint --strict $(CHART) -f $$f"; $(HELM) lint --strict --quiet $(CHART) -f $$f || exit 1; done

# The browser page (web/): npm ci only when package-lock.json changed, Vite only when a source did.
WEB_SOURCES = $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)

web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

.PHONY: web
web: web/dist/index.html ## Build the browser page (TypeScript, React, Vite) into web/dist, embedded in the front binary.

.PHONY: test-web
test-web: web/node_modules/.installed ## Type-check the page and run its unit tests (Vitest).
	cd web && npm run typecheck && npm test

.PHONY: fuzz
fuzz: ## Run each fuzz target (report parser, termination message, HTTP request parsers, API key file and headers) for FUZZTIME (default 30s).
	$(GO) test ./internal/report -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./controllers -run '^$$' -fuzz FuzzResultFromTerminationMessage -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./internal/httpapi -run '^$$' -fuzz FuzzParseRunRequest -fuzztime $${FUZZTIME:-30s}
	@# The API's other parsers, through its handlers (internal/httpapi/fuzz_test.go); one
	@# target per run, so each name is anchored.
	for t in FuzzSnippetRequest FuzzSubmissionsQuery FuzzPathID FuzzRequestID FuzzRequest FuzzIdempotencyKey FuzzJudge0Submission FuzzPistonExecute; do \
		$(GO) test ./internal/httpapi -run '^$$' -fuzz "^$$t\$$" -fuzztime $${FUZZTIME:-30s} || exit 1; \
	done
	@# API keys: the key file and the Authorization / X-Auth-Token headers (internal/auth).
	for t in FuzzParseFile FuzzKeyFromHeader; do \
		$(GO) test ./internal/auth -run '^$$' -fuzz "^$$t\$$" -fuzztime $${FUZZTIME:-30s} || exit 1; \
	done

##@ Build

.PHONY: build
build: web ## Build the operator, runner and front binaries into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/coderun-operator ./cmd
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/coderun-runner ./cmd/runner
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/coderun-front ./cmd/front

.PHONY: image-binaries
image-binaries: web ## Build the static runner, operator and front binaries into their images' build contexts.
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o images/python/coderun-runner ./cmd/runner
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o images/operator/coderun-operator ./cmd
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w" -o images/front/coderun-front ./cmd/front

.PHONY: images
images: image-binaries image-base ## Build the base, Python runner, operator and front images with buildah (or docker: CONTAINER_TOOL=docker).
	$(CONTAINER_TOOL) $(CONTAINER_BUILD) --build-arg BASE_IMAGE=$(BASE_IMG) -t $(RUNNER_IMG) images/python
	$(CONTAINER_TOOL) $(CONTAINER_BUILD) -t $(OPERATOR_IMG) images/operator
	$(CONTAINER_TOOL) $(CONTAINER_BUILD) -t $(FRONT_IMG) images/front

.PHONY: image-base
image-base: ## Build the base image every language image is built FROM (images/base).
	$(CONTAINER_TOOL) $(CONTAINER_BUILD) -t $(BASE_IMG) images/base

.PHONY: images-runtimes
images-runtimes: $(addprefix image-runtime-,$(or $(RUNTIME_NAMES),$(ALL_RUNTIMES))) ## Build the language images of RUNTIMES (default: every images/<name>/); with -j2, two at a time.

# image-runtime-<name> builds localhost/coderun-<name>:$(IMG_TAG) from images/<name>/, FROM the base
# image, with the static runner copied into its build context (its last layer).
image-runtime-%: image-binaries image-base
	@[ -f images/$*/Dockerfile ] || { echo "images/$*/Dockerfile: no such language image (there are: $(ALL_RUNTIMES))" >&2; exit 1; }
	@start=$$(date +%s); \
	echo "$$(date +%H:%M:%S) building localhost/coderun-$*:$(IMG_TAG)"; \
	[ $* = python ] || cp images/python/coderun-runner images/$*/coderun-runner; \
	$(CONTAINER_TOOL) $(CONTAINER_BUILD) --build-arg BASE_IMAGE=$(BASE_IMG) -t localhost/coderun-$*:$(IMG_TAG) images/$* >/dev/null; \
	echo "$$(date +%H:%M:%S) built localhost/coderun-$*:$(IMG_TAG) in $$(( $$(date +%s) - start ))s"

##@ Local cluster (no Docker engine or registry needed; root)

.PHONY: kube-binaries
kube-binaries: ## Build etcd and every Kubernetes component from the Go module proxy (cached in bin/k8s).
	hack/kube-binaries.sh kube-apiserver etcd kube-controller-manager kube-scheduler kubelet kube-proxy

.PHONY: runtime-binaries
runtime-binaries: ## Build the node's containerd 2 and runc from the Go module proxy (cached in bin/containerd, bin/runc; needs hack/host-tools.sh's libseccomp-dev).
	hack/runtime-binaries.sh

.PHONY: dev
dev: kube-binaries helm ## Start the local cluster, build and load the images, install the chart and leave it running (RUNTIMES=all: every language).
	hack/host-tools.sh
	hack/runtime-binaries.sh
	hack/gvisor.sh
	hack/local-cluster.sh up
	RUNTIMES="$(RUNTIME_NAMES)" hack/dev-images.sh $(RUNNER_IMG) $(OPERATOR_IMG) $(FRONT_IMG)
	RUNTIMES="$(RUNTIME_NAMES)" HELM=$(HELM) hack/dev-deploy.sh
	@HELM=$(HELM) hack/dev-info.sh

.PHONY: dev-down
dev-down: ## Stop the local cluster and undo every change it made to this machine (keeps the image cache).
	hack/local-cluster.sh down

.PHONY: dev-clean
dev-clean: ## dev-down, and also remove the cached images in .dev/cache.
	hack/local-cluster.sh clean

.PHONY: test-e2e
test-e2e: dev ## Run the end-to-end suites (test/e2e, then the page in Chromium) against the local cluster, bringing it up if needed (RUNTIMES=all: every language, each required Ready).
	@# The upgrade test moves the release to images tagged $(E2E_UPGRADE_TAG) and back.
	RUNTIMES=python IMG_TAG=$(E2E_UPGRADE_TAG) hack/dev-images.sh $(RUNNER_IMG:$(IMG_TAG)=$(E2E_UPGRADE_TAG)) $(OPERATOR_IMG:$(IMG_TAG)=$(E2E_UPGRADE_TAG)) $(FRONT_IMG:$(IMG_TAG)=$(E2E_UPGRADE_TAG))
	@# TestChartWithPostgres runs a PostgreSQL pod of test/images/postgres.
	hack/e2e-images.sh
	KUBECONFIG=$(DEV_KUBECONFIG) FRONT_URL=http://127.0.0.1:$(DEV_WEB_PORT) HELM=$(HELM) E2E_UPGRADE_TAG=$(E2E_UPGRADE_TAG) \
		E2E_POSTGRES_IMAGE=localhost/coderun-e2e-postgres:$(IMG_TAG) E2E_REQUIRE_ALL_RUNTIMES=$(if $(filter all,$(RUNTIMES)),true,false) $(GO) test -tags e2e ./test/e2e -count=1 -v -timeout 60m
	hack/host-tools.sh chromium
	cd web && BASE_URL=http://127.0.0.1:$(DEV_WEB_PORT) ARTIFACTS_DIR=$(CURDIR)/test/artifacts/browser npm run test:browser

.PHONY: test-e2e-gvisor
test-e2e-gvisor: dev ## Run the e2e suite (but the chart's own install, upgrade and failover tests) with run pods under gVisor, then move them back to runc.
	HELM=$(HELM) hack/e2e-gvisor.sh

.PHONY: bench
bench: dev ## Time cold and warm runs, /execute and a burst against plain Jobs and pods on the local cluster (BENCH_N, BENCH_ARGS).
	KUBECONFIG=$(DEV_KUBECONFIG) $(GO) run ./hack/bench -n $${BENCH_N:-10} -front http://127.0.0.1:$(DEV_WEB_PORT) $(BENCH_ARGS)

.PHONY: test-faults
test-faults: dev ## Kill or restart each component (operator, front, PostgreSQL, kube-apiserver, etcd, containerd, kubelet) under a mixed load on the local cluster and print what was lost (minutes).
	HELM=$(HELM) hack/test-faults.sh

.PHONY: test-scale
test-scale: kube-binaries ## 10,000 CodeRuns and 10,000 plain Jobs on a separate control plane with 100 kwok nodes: throughput ratio, operator peak RSS, TTL cleanup (minutes).
	hack/test-scale.sh

##@ kind (Docker: the machine's, or Debian's docker.io started by hack/docker.sh as root)

.PHONY: kind-node-image
kind-node-image: ## Build kind's node image here (hack/kind-node-image.sh: Kubernetes, containerd and the component images from source; no registry).
	hack/kind-node-image.sh

.PHONY: test-e2e-kind
test-e2e-kind: kind helm ## Create a kind cluster (node image built here), docker build the images, kind load them, helm install the chart and run test/e2e against it.
	KIND=$(KIND) HELM=$(HELM) KIND_CLUSTER=$(KIND_CLUSTER) IMG_TAG=$(IMG_TAG) E2E_UPGRADE_TAG=$(E2E_UPGRADE_TAG) hack/kind-e2e.sh

.PHONY: kind-down
kind-down: kind ## Delete the kind cluster, its forwards and the project's own Docker daemons (hack/docker.sh) if they run.
	KIND=$(KIND) KIND_CLUSTER=$(KIND_CLUSTER) hack/kind-e2e.sh down

##@ Deployment

RELEASE ?= coderun
RELEASE_NAMESPACE ?= coderun-system
# Extra arguments of helm upgrade --install, e.g. HELM_ARGS="--set image.registry=localhost".
HELM_ARGS ?=
# A second tag of the same images, for the e2e suite's helm upgrade.
E2E_UPGRADE_TAG ?= $(IMG_TAG)-upgrade

.PHONY: helm-install
helm-install: helm ## helm upgrade --install the chart (release $(RELEASE) in $(RELEASE_NAMESPACE)) into the current cluster; waits until ready.
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(RELEASE_NAMESPACE) --create-namespace \
		--set image.tag=$(IMG_TAG) --wait --timeout 5m $(HELM_ARGS)

.PHONY: helm-uninstall
helm-uninstall: helm ## helm uninstall the release (the CRD, CodeRuns and the SQLite volume stay).
	$(HELM) uninstall $(RELEASE) --namespace $(RELEASE_NAMESPACE) --wait

.PHONY: install
install: manifests ## Install the CRD into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRD (and every CodeRun) from the cluster.
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator and the runs namespace (config/default) to the current cluster.
	kubectl apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove what deploy created.
	kubectl delete --ignore-not-found -k config/default

.PHONY: run
run: manifests generate ## Run the operator on this machine against the current kubeconfig.
	$(GO) run ./cmd --config config/manager/operator-config.yaml

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	@echo "installing controller-gen $(CONTROLLER_TOOLS_VERSION) into $(LOCALBIN)"
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into bin/.
$(GOLANGCI_LINT):
	@mkdir -p $(LOCALBIN)
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(LOCALBIN) (about a minute the first time)"
	GOBIN=$(LOCALBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $(GOLANGCI_LINT)

.PHONY: helm
helm: $(HELM) ## Install Helm into bin/.
$(HELM):
	@mkdir -p $(LOCALBIN)
	@echo "installing helm $(HELM_VERSION) into $(LOCALBIN) (about a minute the first time)"
	GOBIN=$(LOCALBIN) $(GO) install -ldflags "-X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)

.PHONY: helm-docs
helm-docs: $(HELM_DOCS) ## Install helm-docs into bin/.
$(HELM_DOCS):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)
	mv $(LOCALBIN)/helm-docs $(HELM_DOCS)

.PHONY: kind
kind: $(KIND) ## Install kind into bin/ (only used on machines with Docker).
$(KIND):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/kind@$(KIND_VERSION)
	mv $(LOCALBIN)/kind $(KIND)

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd for envtest from the Go module proxy (cached in bin/k8s).
	KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) KUBE_BIN_DIR=$(KUBE_BIN_DIR) hack/kube-binaries.sh kube-apiserver etcd
