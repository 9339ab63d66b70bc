package main

// Spec is one image that `make images` builds: Go main packages, each
// built static into one file, and how the container runs them.
type Spec struct {
	// Name is the short name: -images selects by it, and the tarball is
	// NAME.tar.
	Name string
	// Repository is the image name without its tag.
	Repository string
	// Tag, when set, is used instead of -tag.
	Tag string
	// Binaries are the main packages and where each goes in the image.
	Binaries []Binary
	// Entrypoint is the container's command.
	Entrypoint []string
	// UID and GID run the entrypoint; User names them in /etc/passwd.
	UID, GID int
	User     string
	// Title and Description become the OCI labels of the same name.
	Title, Description string
	// Iptables adds this machine's iptables (xtables-nft-multi with its
	// libraries and extension modules) to the image.
	Iptables bool
}

// Binary is one Go main package in an image.
type Binary struct {
	// Package is the main package's directory, relative to the module root,
	// such as ./cmd/manager.
	Package string
	// Path is the absolute path of the binary in the image.
	Path string
	// Tags are build tags, such as grpcnotrace.
	Tags []string
}

// source is the org.opencontainers.image.source label of every image.
const source = "https://github.com/skeinmesh/skein"

// catalog is every image, in build order. Users follow ARCHITECTURE.md:
// the operator runs as distroless's nonroot (65532), the proxy as 7117 (its
// UID is what skein-init's iptables rules exclude), skein-init as root since
// iptables needs NET_ADMIN in the effective set; the pause image as 65535,
// like Kubernetes' own.
var catalog = []Spec{{
	Name:        "operator",
	Repository:  "docker.io/skeinmesh/skein-operator",
	Binaries:    []Binary{{Package: "./cmd/manager", Path: "/manager"}},
	Entrypoint:  []string{"/manager"},
	UID:         65532,
	GID:         65532,
	User:        "nonroot",
	Title:       "skein-operator",
	Description: "Skein's operator: reconcilers, admission webhooks, xDS server and mesh CA",
}, {
	Name:       "proxy",
	Repository: "docker.io/skeinmesh/skein-proxy",
	// grpcnotrace: without golang.org/x/net/trace (and the text/template it
	// brings) the binary is 4 MB and the idle proxy ~2 MB smaller.
	Binaries:    []Binary{{Package: "./cmd/proxy", Path: "/skein-proxy", Tags: []string{"grpcnotrace"}}},
	Entrypoint:  []string{"/skein-proxy"},
	UID:         7117,
	GID:         7117,
	User:        "skein-proxy",
	Title:       "skein-proxy",
	Description: "Skein's sidecar proxy",
}, {
	Name:        "init",
	Repository:  "docker.io/skeinmesh/skein-init",
	Binaries:    []Binary{{Package: "./cmd/init", Path: "/skein-init"}},
	Entrypoint:  []string{"/skein-init"},
	Iptables:    true,
	Title:       "skein-init",
	Description: "Skein's init container: sends a meshed pod's traffic through its proxy",
}, {
	Name:        "echo",
	Repository:  "docker.io/skeinmesh/test-echo",
	Binaries:    []Binary{{Package: "./test/images/echo", Path: "/echo"}},
	Entrypoint:  []string{"/echo"},
	UID:         65532,
	GID:         65532,
	User:        "nonroot",
	Title:       "test-echo",
	Description: "Skein's end-to-end test backend: HTTP and gRPC echo with faults",
}, {
	// Tagged as the sandbox image of containerd's CRI, so that the kubelet
	// never pulls one.
	Name:        "pause",
	Repository:  "registry.k8s.io/pause",
	Tag:         "3.10",
	Binaries:    []Binary{{Package: "./test/images/pause", Path: "/pause"}},
	Entrypoint:  []string{"/pause"},
	UID:         65535,
	GID:         65535,
	User:        "pause",
	Title:       "pause",
	Description: "A pod sandbox's pause process, built from Skein's test/images/pause",
}}
