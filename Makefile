# Skein: a Kubernetes service mesh. `make help` lists the targets.

# Tools and binaries built from source land in bin/; bin/k8s holds the
# Kubernetes and etcd binaries that envtest and `make run` use.
LOCALBIN ?= $(shell pwd)/bin
K8S_BIN ?= $(LOCALBIN)/k8s
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOTESTSUM ?= $(LOCALBIN)/gotestsum

## Tool versions, pinned.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOTESTSUM_VERSION ?= v1.13.0

# Where `make run` and `make demo-api` keep the local API server's state.
LOCAL_STATE ?= $(shell pwd)/.local

# The local single-node cluster's state: certificates, configs, logs, containerd's images.
CLUSTER_STATE ?= /var/lib/skein-cluster
CLUSTER_KUBECONFIG ?= $(CLUSTER_STATE)/admin.kubeconfig
CLUSTER_CONTAINERD_SOCK ?= $(CLUSTER_STATE)/run/containerd/containerd.sock

GO_TEST_FLAGS ?= -count=1

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=skein-operator crd paths="./api/..." paths="./controllers/..." paths="./webhook/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (the end-to-end tests too).
	go vet ./...
	go vet -tags e2e ./test/e2e/...

.PHONY: verify
verify: controller-gen ## Regenerate code and manifests; fail if anything generated was stale, or go.mod untidy.
	@MAKE=$(MAKE) hack/verify-generated.sh

.PHONY: test
test: verify vet envtest-assets gotestsum ## Run every test; those that need Kubernetes run against a real kube-apiserver and etcd (built from source on first use).
	hack/verify-generated_test.sh
	KUBEBUILDER_ASSETS=$(K8S_BIN) $(GOTESTSUM) --format pkgname-and-test-fails -- $(GO_TEST_FLAGS) ./...

##@ Build

.PHONY: build
build: ## Build the operator binary.
	go build -o $(LOCALBIN)/skein-operator ./cmd/manager

# skein-proxy's build tags, as hack/images/catalog.go builds its image:
# grpcnotrace leaves out golang.org/x/net/trace (4 MB of binary, ~2 MB of RSS).
PROXY_TAGS ?= grpcnotrace

.PHONY: proxy
proxy: ## Build skein-proxy into bin/ as its image has it.
	go build -trimpath -ldflags="-s -w" -tags=$(PROXY_TAGS) -o $(LOCALBIN)/skein-proxy ./cmd/proxy

.PHONY: run
run: envtest-assets kubectl ## Run the operator here: against your cluster, or a local API server when none is reachable.
	hack/run-local.sh run

.PHONY: demo-api
demo-api: envtest-assets kubectl ## The control plane alone: a local API server (no kubelet), the operator, the samples.
	hack/run-local.sh demo

.PHONY: stop
stop: ## Stop the local API server and operator that `make run` or `make demo-api` started.
	hack/run-local.sh stop

##@ Benchmarks

# Flags for the benchmark, e.g. BENCH_ARGS="-proxies=2000 -xds=delta".
BENCH_ARGS ?=

.PHONY: bench-controlplane
bench-controlplane: envtest-assets ## Connect 1,000 simulated proxies over ADS and time pushes (a benchmark, not a test)
	KUBEBUILDER_ASSETS=$(K8S_BIN) go run ./test/bench/controlplane $(BENCH_ARGS)

# Flags for bench-proxy, e.g. BENCH_PROXY_ARGS="--rate=2000 --rounds=3"; SKEIN_PROXY=path picks the binary.
BENCH_PROXY_ARGS ?=

.PHONY: bench-proxy
bench-proxy: $(if $(SKEIN_PROXY),,proxy) ## Compare skein-proxy, HAProxy and nginx on one CPU against direct, on loopback; prints one table (a benchmark, not a test; installs what it needs)
	hack/bench-proxy/bench.sh $(BENCH_PROXY_ARGS)

# Flags for h2spec, e.g. H2SPEC_ARGS="--strict" or H2SPEC_ARGS="http2/5.1 -v"; SKEIN_PROXY=path picks the binary.
H2SPEC_ARGS ?=

.PHONY: h2spec
h2spec: $(if $(SKEIN_PROXY),,proxy) ## Check skein-proxy's HTTP/2 server with h2spec (h2c, on loopback); fails on a case not allowed in hack/h2spec.sh (builds h2spec into bin/)
	hack/h2spec.sh $(H2SPEC_ARGS)

##@ Local cluster

.PHONY: demo
demo: cluster-up cluster-load deploy ## Skein on the local single-node cluster, meshing a sample app (builds what is missing first).
	KUBECONFIG=$(CLUSTER_KUBECONFIG) hack/demo.sh

.PHONY: e2e
e2e: cluster-up cluster-load deploy ## Run the end-to-end tests on the local cluster with Skein deployed.
	KUBECONFIG=$(CLUSTER_KUBECONFIG) $(GOTESTSUM) --format standard-verbose -- -tags e2e -count=1 -timeout 20m ./test/e2e/...

.PHONY: cluster-binaries
cluster-binaries: ## Build the local cluster's binaries from source into bin/k8s (a no-op when present at the pinned versions).
	@hack/build-k8s.sh $(K8S_BIN) etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns

.PHONY: cluster-up
cluster-up: cluster-binaries gotestsum ## Start the local single-node cluster (root); admin kubeconfig in $(CLUSTER_STATE)/admin.kubeconfig.
	@CLUSTER_STATE=$(CLUSTER_STATE) K8S_BIN=$(K8S_BIN) hack/cluster/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove everything it added to the machine.
	@CLUSTER_STATE=$(CLUSTER_STATE) K8S_BIN=$(K8S_BIN) hack/cluster/cluster.sh down

.PHONY: cluster-status
cluster-status: ## Show what of the local cluster runs.
	@CLUSTER_STATE=$(CLUSTER_STATE) K8S_BIN=$(K8S_BIN) hack/cluster/cluster.sh status

.PHONY: cluster-test
cluster-test: cluster-binaries ## Test that cluster-down leaves nothing behind (takes a running cluster down first; about 40s).
	@CLUSTER_STATE=$(CLUSTER_STATE) K8S_BIN=$(K8S_BIN) hack/cluster/down_test.sh

.PHONY: cluster-load
cluster-load: images ## Import bin/images/*.tar into the local cluster's containerd.
	hack/images/load.sh $(CLUSTER_CONTAINERD_SOCK) $(LOCALBIN)/images/*.tar

.PHONY: deploy
deploy: kubectl ## Install Skein (config/default) into the local cluster, or the one in KUBECONFIG, and wait until it is Ready.
	KUBECONFIG=$${KUBECONFIG:-$(CLUSTER_KUBECONFIG)} hack/deploy.sh

##@ Images

# Tag of Skein's images (the pause image keeps registry.k8s.io/pause:3.10).
IMAGE_TAG ?= dev

.PHONY: images
images: ## Build the operator, proxy, init and e2e test images as docker-archive tarballs into bin/images (no Docker needed).
	go run ./hack/images -out $(LOCALBIN)/images -tag $(IMAGE_TAG) -revision=$(shell git rev-parse HEAD 2>/dev/null)

##@ Dependencies

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd from source into bin/k8s (a no-op when present at the pinned versions).
	@hack/build-k8s.sh $(K8S_BIN) etcd kube-apiserver

.PHONY: kubectl
kubectl: ## Build kubectl from source into bin/k8s.
	@hack/build-k8s.sh $(K8S_BIN) kubectl

.PHONY: gotestsum
gotestsum: $(GOTESTSUM) ## Build gotestsum, the test runner, into bin/.
$(GOTESTSUM):
	GOBIN=$(LOCALBIN) go install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Build controller-gen into bin/.
$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
