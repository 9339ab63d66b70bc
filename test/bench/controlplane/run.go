package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

// connectWorkers is how many streams are being opened at once.
const connectWorkers = 64

// run runs the benchmark and prints its results. Whatever it started, it
// stops before returning, on errors and interrupts too.
func run(ctx context.Context, cfg config) (err error) {
	progress("starting kube-apiserver and etcd (envtest, %s)", testenv.AssetsDir())
	cluster, err := testenv.StartCluster(nil)
	if err != nil {
		return fmt.Errorf("start the API server: %w", err)
	}
	defer func() {
		if serr := cluster.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop the API server: %w", serr)
		}
		progress("stopped the API server")
	}()
	tmp, err := os.MkdirTemp("", "skein-bench-controlplane-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Build the operator while the mesh is created.
	bin := filepath.Join(tmp, "manager")
	built := make(chan error, 1)
	go func() { built <- buildOperator(ctx, bin) }()
	m, err := createMesh(ctx, cluster, cfg)
	if berr := <-built; err == nil && berr != nil {
		err = berr
	}
	if err != nil {
		return err
	}
	progress("built cmd/manager")

	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, cluster.Env.KubeConfig, 0o600); err != nil {
		return err
	}
	logPath := cfg.managerLog
	if logPath == "" {
		logPath = filepath.Join(tmp, "manager.log")
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	op, err := startOperator(bin, kubeconfig, addr, logPath, cfg.managerFlags)
	if err != nil {
		return err
	}
	defer func() {
		cut := op.logSize()
		if serr := op.stop(); serr != nil && err == nil {
			err = serr
		}
		progress("stopped the operator")
		reportLog(logPath, cut, cfg.managerLog != "", err != nil)
	}()
	if err := op.waitServing(ctx, addr, 2*time.Minute); err != nil {
		return err
	}
	pid := op.cmd.Process.Pid
	progress("the operator (pid %d) serves xDS on %s; letting its reconcilers settle", pid, addr)
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	res := &results{cfg: cfg}
	res.mem = append(res.mem, memRow("operator", "serving, no proxy connected", pid))

	start := time.Now()
	f, err := connectFleet(ctx, addr, m.pods, cfg.xds, connectWorkers)
	if err != nil {
		return err
	}
	defer func() {
		f.close()
		progress("closed the proxies' streams")
	}()
	progress("opened %d ADS streams (%s xDS) in %s; waiting for every first config", len(f.proxies), cfg.xds, since(start))
	lat, ended, err := f.coldStart(ctx, start, cfg.connectTimeout)
	if err != nil {
		return err
	}
	res.cold = summarize(lat)
	progress("cold start: %d/%d proxies ACKed their first full config; %s", len(lat), len(f.proxies), res.cold)
	for e, n := range ended {
		progress("  %d streams ended: %s", n, e)
	}
	res.mem = append(res.mem, memRow("operator", fmt.Sprintf("after the cold start of %d proxies", len(f.proxies)), pid))
	if len(lat) < len(f.proxies) {
		res.print()
		return fmt.Errorf("only %d of %d proxies got their first config within %s", len(lat), len(f.proxies), cfg.connectTimeout)
	}
	if !f.settle(ctx, 2*time.Second, 60*time.Second) {
		progress("WARNING: responses still arriving 60s after the cold start")
	}
	podsPerNS := cfg.proxies / cfg.namespaces
	members := (podsPerNS + cfg.services - 1) / cfg.services // the hot service, svc-0, gets the remainder's first pod
	progress("before the changes: %d/%d proxies route %s with %d retries; %d/%d see its %d endpoints",
		countProxies(f, func(c *xdstest.Client) bool { n, ok := retriesOf(c, m.hot); return ok && n == initialAttempts }), len(f.proxies),
		m.hot.host(), initialAttempts,
		countProxies(f, func(c *xdstest.Client) bool { n, ok := endpointsOf(c, m.hot); return ok && n == members }), len(f.proxies), members)

	cpu := newCPUMeter(pid)
	select {
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	idle := cpu.since()
	progress("idle baseline, 5s without changes: operator used %s of CPU, this benchmark's clients %s", ms(idle.op), ms(idle.bench))
	for r := 1; r <= cfg.rounds; r++ {
		attempts := int32(initialAttempts + r)
		rd, err := f.measure(ctx, fmt.Sprintf("TrafficPolicy change %d (RDS)", r), resource.RouteType, cfg.timeout,
			func(ctx context.Context) (time.Time, error) { return m.setAttempts(ctx, attempts) },
			func(c *xdstest.Client) bool { n, ok := retriesOf(c, m.hot); return ok && n == uint32(attempts) })
		if err != nil {
			return err
		}
		res.add(rd, fmt.Sprintf("retries %d", attempts), cpu.since())
	}
	for r := 1; r <= cfg.rounds; r++ {
		ready := r%2 == 0 // the first endpoint turns unready, ready again, unready...
		want := members
		if !ready {
			want--
		}
		rd, err := f.measure(ctx, fmt.Sprintf("endpoint change %d (EDS)", r), resource.EndpointType, cfg.timeout,
			func(ctx context.Context) (time.Time, error) { return m.setFirstEndpointReady(ctx, ready) },
			func(c *xdstest.Client) bool { n, ok := endpointsOf(c, m.hot); return ok && n == want })
		if err != nil {
			return err
		}
		res.add(rd, fmt.Sprintf("%d endpoints", want), cpu.since())
	}
	if !op.running() {
		return fmt.Errorf("the operator exited during the benchmark: %v", op.err)
	}

	res.mem = append(res.mem, memRow("operator", "at the end", pid))
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if mem, ok := childMemory(name); ok {
			res.mem = append(res.mem, memLine{process: name, when: "at the end", mem: mem})
		}
	}
	res.mem = append(res.mem, memRow(fmt.Sprintf("this benchmark (%d clients)", len(f.proxies)), "at the end", os.Getpid()))
	res.print()
	return nil
}

// cpuMeter measures the CPU time the operator and this benchmark used
// between calls of since.
type cpuMeter struct {
	pid       int
	op, bench time.Duration
}

func newCPUMeter(pid int) *cpuMeter {
	return &cpuMeter{pid: pid, op: procCPU(pid), bench: procCPU(os.Getpid())}
}

// since returns what the operator and the benchmark used since the last call.
func (m *cpuMeter) since() cpuUse {
	op, bench := procCPU(m.pid), procCPU(os.Getpid())
	u := cpuUse{op: op - m.op, bench: bench - m.bench}
	m.op, m.bench = op, bench
	return u
}

type cpuUse struct{ op, bench time.Duration }

func countProxies(f *fleet, ok func(*xdstest.Client) bool) int {
	n := 0
	for _, p := range f.proxies {
		if ok(p.ads) {
			n++
		}
	}
	return n
}

func memRow(process, when string, pid int) memLine {
	mem, err := procMemory(pid)
	if err != nil {
		progress("WARNING: read the memory of %s: %v", process, err)
	}
	return memLine{process: process, when: when, mem: mem}
}

// reportLog prints how many errors the operator logged, the last of them,
// and the log's tail when the benchmark failed. cut is the log's size when
// the operator was asked to stop.
func reportLog(path string, cut int64, kept, failed bool) {
	n, shutdown, last := logErrors(path, cut, 10)
	fmt.Printf("\nThe operator logged %d error lines during the benchmark, and %d while shutting down.\n", n, shutdown)
	for _, l := range last {
		fmt.Println("  " + truncate(l, 400))
	}
	if failed {
		fmt.Println("Last lines of the operator's log:")
		for _, l := range logTail(path, 40) {
			fmt.Println("  " + truncate(l, 400))
		}
	}
	if kept {
		fmt.Printf("The operator's log is in %s.\n", path)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shortType is a type URL's last element: Cluster, RouteConfiguration...
func shortType(t string) string { return t[strings.LastIndexByte(t, '.')+1:] }
