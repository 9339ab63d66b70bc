// Command pki writes the local cluster's certificates and kubeconfigs
// (hack/cluster/cluster.sh runs it): a CA; the API server's serving
// certificate for the node's address, 127.0.0.1, the kubernetes Service's
// ClusterIP and kubernetes.default.svc...; the kubelet's serving certificate;
// the API server's client certificate for kubelets; the service-account key
// pair; and a kubeconfig for the admin and for each component. Running it
// again with the same flags changes nothing.
//
//	go run ./hack/cluster/pki -dir STATE/pki -node-name vm -node-ip 192.0.2.2 \
//	    -service-ip 10.96.0.1 -server https://192.0.2.2:6443
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	dir := flag.String("dir", "", "directory to write (created when missing)")
	nodeName := flag.String("node-name", "", "the node's name")
	nodeIP := flag.String("node-ip", "", "the node's IPv4 address, which the API server serves on")
	serviceIP := flag.String("service-ip", "10.96.0.1", "ClusterIP of the kubernetes Service")
	server := flag.String("server", "", "API server URL for the kubeconfigs (default https://NODE-IP:6443)")
	flag.Parse()

	p := Params{NodeName: *nodeName, NodeIP: net.ParseIP(*nodeIP).To4(), ServiceIP: net.ParseIP(*serviceIP).To4(), Server: *server}
	if p.Server == "" && p.NodeIP != nil {
		p.Server = "https://" + net.JoinHostPort(p.NodeIP.String(), "6443")
	}
	if *dir == "" || p.NodeName == "" || p.NodeIP == nil || p.ServiceIP == nil {
		fmt.Fprintln(os.Stderr, "pki: -dir, -node-name, and IPv4 -node-ip and -service-ip are required")
		os.Exit(2)
	}
	wrote, err := Write(*dir, p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
	if wrote {
		fmt.Printf("pki: wrote certificates and kubeconfigs for %s (%s) to %s\n", p.NodeName, p.NodeIP, *dir)
	}
}
