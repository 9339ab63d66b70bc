//go:build tools

// Package tools pins the Kubernetes release whose binaries the Makefile builds
// from source: kube-apiserver for envtest and `make run`, and the rest of the
// control plane, kubelet and kubectl for the local cluster.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
