# config.sh: the configuration files of containerd, CNI, the kubelet,
# kube-proxy and CoreDNS, and the pod sandbox image. Sourced by cluster.sh.

# containerd pulls images through this proxy, where nothing listens: a pull
# of an image that was not imported fails here instead of reaching a
# registry. Addresses of this machine and cluster go direct.
pull_proxy=http://127.0.0.1:9
no_proxy=localhost,127.0.0.1,$pod_cidr,$service_cidr

# write_configs NODE_IP NODE_NAME: writes $state/config/*.
write_configs() {
	local ip=$1 name=$2 cfg=$state/config
	mkdir -p "$cfg/cni" "$cfg/certs.d"
	no_proxy=$no_proxy,$ip

	cat >"$cfg/containerd.toml" <<EOF
# containerd of the local cluster: every path under $state, so it shares
# nothing with another containerd.
version = 2
root = "$state/containerd"
state = "$state/run/containerd"
oom_score = 0
# opt would create /opt/containerd; the others are snapshotters not used here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$containerd_sock"

[ttrpc]
  address = "$containerd_sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  # This VM cannot lower oom_score_adj: never ask for less than our own.
  restrict_oom_score_adj = true
  # Pod network namespaces are mounted under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$state/run/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cfg/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$cfg/certs.d"
EOF

	# The bridge is ours (setup_network gives it the gateway address and
	# forwarding on the bridge alone), so the plugin is no gateway: it would
	# turn on IP forwarding on every interface of the machine.
	cat >"$cfg/cni/10-$cni_network.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$cni_network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/networks",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$bridge_ip"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

	# Pods with dnsPolicy Default get this: no server off the machine.
	cat >"$cfg/resolv.conf" <<EOF
# The local cluster names no upstream DNS server: no query leaves the machine.
nameserver $dns_ip
EOF

	cat >"$cfg/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine is a cgroup v1 host.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
# The VM cannot lower oom_score_adj.
oomScoreAdj: 0
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $state/pki/kubelet-serving.crt
tlsPrivateKeyFile: $state/pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $state/pki/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$containerd_sock
imageServiceEndpoint: unix://$containerd_sock
clusterDNS: [$dns_ip]
clusterDomain: $cluster_domain
resolvConf: $cfg/resolv.conf
podLogsDir: $state/pod-logs
# A test machine's disk may be fuller than a node's should be.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
rotateCertificates: false
serverTLSBootstrap: false
EOF

	cat >"$cfg/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $state/pki/kube-proxy.kubeconfig
hostnameOverride: $name
mode: iptables
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
oomScoreAdj: 0
# Leave the machine's conntrack sysctls alone (0: do not set).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  # true would set route_localnet on the host.
  localhostNodePorts: false
EOF

	cat >"$cfg/Corefile" <<EOF
# CoreDNS of the local cluster: cluster.local only. There is no forward
# plugin in this build, so a name outside the cluster gets SERVFAIL here.
.:53 {
    bind $ip
    errors
    health $coredns_health
    ready $coredns_ready
    kubernetes $cluster_domain in-addr.arpa ip6.arpa {
        kubeconfig $state/pki/coredns.kubeconfig skein
        pods insecure
        ttl 30
    }
    cache 30
    loadbalance
}
EOF

	# CoreDNS runs on the host: the kube-dns Service points at it through
	# an EndpointSlice that no controller manages.
	cat >"$cfg/coredns.yaml" <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: skein:coredns
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: skein:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: skein:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: skein:coredns
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
    kubernetes.io/name: CoreDNS
spec:
  clusterIP: $dns_ip
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: skein-cluster
addressType: IPv4
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
endpoints:
- addresses: [$ip]
  nodeName: $name
  conditions: {ready: true}
EOF
}

has_sandbox_image() {
	local images
	images=$(ctr_ -n k8s.io images ls -q)
	grep -qxF "$sandbox_image" <<<"$images"
}

# ensure_sandbox_image: imports the pause image that containerd's CRI runs
# as every pod's sandbox, built from source by hack/images, unless present.
ensure_sandbox_image() {
	has_sandbox_image && return
	local out=$state/images
	say "building and importing $sandbox_image (hack/images, test/images/pause)"
	(cd "$root" && go run ./hack/images -images pause -out "$out" >/dev/null) ||
		die "could not build the pause image with hack/images"
	ctr_ -n k8s.io images import "$out/pause.tar" >/dev/null
	has_sandbox_image ||
		die "$out/pause.tar did not provide $sandbox_image"
}
