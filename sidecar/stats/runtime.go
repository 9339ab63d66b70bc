package stats

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// runtimeFamilies are the Go runtime's series, with the names, types and
// meanings of the Prometheus Go client's default Go collector, so that
// dashboards made for any Go program work.
func runtimeFamilies() []family {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	pauses := &distribution{count: uint64(gc.NumGC), sum: gc.PauseTotal.Seconds(),
		bounds: []float64{0, .25, .5, .75, 1}, values: make([]float64, 5)}
	for i, q := range gc.PauseQuantiles {
		pauses.values[i] = q.Seconds()
	}
	rm := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}, {Name: "/sched/gomaxprocs:threads"}}
	metrics.Read(rm)
	rmValue := func(i int) float64 {
		if rm[i].Value.Kind() != metrics.KindUint64 {
			return math.NaN()
		}
		return float64(rm[i].Value.Uint64())
	}
	threads, _ := runtime.ThreadCreateProfile(nil)

	u := func(v uint64) float64 { return float64(v) }
	fams := []family{
		{name: "go_gc_duration_seconds", kind: summary, series: []series{{dist: pauses}},
			help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles."},
		one("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", gauge, rmValue(0)),
		one("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", gauge, rmValue(1)),
		one("go_goroutines", "Number of goroutines that currently exist.", gauge, float64(runtime.NumGoroutine())),
		{name: "go_info", help: "Information about the Go environment.", kind: gauge,
			series: []series{{labels: []label{{"version", runtime.Version()}}, value: 1}}},
		one("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", gauge, u(ms.Alloc)),
		one("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", counter, u(ms.TotalAlloc)),
		one("go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", gauge, u(ms.BuckHashSys)),
		one("go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", counter, u(ms.Frees)),
		one("go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", gauge, u(ms.GCSys)),
		one("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", gauge, u(ms.HeapAlloc)),
		one("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gauge, u(ms.HeapIdle)),
		one("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", gauge, u(ms.HeapInuse)),
		one("go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", gauge, u(ms.HeapObjects)),
		one("go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", gauge, u(ms.HeapReleased)),
		one("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gauge, u(ms.HeapSys)),
		one("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", gauge, float64(ms.LastGC)/1e9),
		one("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", counter, u(ms.Mallocs)),
		one("go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", gauge, u(ms.MCacheInuse)),
		one("go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", gauge, u(ms.MCacheSys)),
		one("go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", gauge, u(ms.MSpanInuse)),
		one("go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", gauge, u(ms.MSpanSys)),
		one("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", gauge, u(ms.NextGC)),
		one("go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", gauge, u(ms.OtherSys)),
		one("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", gauge, u(ms.StackInuse)),
		one("go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", gauge, u(ms.StackSys)),
		one("go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", gauge, u(ms.Sys)),
		one("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", gauge, rmValue(2)),
		one("go_threads", "Number of OS threads created.", gauge, float64(threads)),
	}
	return fams
}

// userHZ is the unit of /proc's CPU times and start time: USER_HZ, 100 on
// every Linux architecture Go supports (Prometheus' procfs assumes it too).
const userHZ = 100

// processFamilies are the process's series, as the Prometheus Go client's
// process collector names them, read from /proc; on a system without it
// (or when a file cannot be read) the series it would give are left out,
// but for the start time, which then is start.
func processFamilies(start time.Time) []family {
	var fams []family
	startTime := float64(start.UnixNano()) / 1e9
	if st := procStat(); st != nil {
		fams = append(fams,
			one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", counter, (st.utime+st.stime)/userHZ),
			one("process_resident_memory_bytes", "Resident memory size in bytes.", gauge, st.rss*float64(os.Getpagesize())),
			one("process_virtual_memory_bytes", "Virtual memory size in bytes.", gauge, st.vsize),
		)
		if boot := bootTime(); boot > 0 {
			startTime = boot + st.starttime/userHZ
		}
	}
	fams = append(fams, one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", gauge, startTime))
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fams = append(fams, one("process_open_fds", "Number of open file descriptors.", gauge, float64(len(fds))))
	}
	if limits, err := os.ReadFile("/proc/self/limits"); err == nil {
		if v, ok := softLimit(limits, "Max open files"); ok {
			fams = append(fams, one("process_max_fds", "Maximum number of open file descriptors.", gauge, v))
		}
		if v, ok := softLimit(limits, "Max address space"); ok {
			fams = append(fams, one("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", gauge, v))
		}
	}
	if in, out, ok := netOctets(); ok {
		fams = append(fams,
			one("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", counter, in),
			one("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", counter, out),
		)
	}
	return fams
}

type stat struct{ utime, stime, starttime, vsize, rss float64 }

// procStat reads /proc/self/stat; nil when it cannot.
func procStat() *stat {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	// The fields after the ")" that ends comm, from the 3rd (state) on.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return nil
	}
	num := func(j int) float64 { v, _ := strconv.ParseFloat(f[j], 64); return v }
	return &stat{utime: num(11), stime: num(12), starttime: num(19), vsize: num(20), rss: num(21)}
}

// bootTime is /proc/stat's btime, 0 when unknown.
func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t
		}
	}
	return 0
}

// softLimit is the soft limit of the named line of /proc/self/limits;
// unlimited is the largest uint64, as Prometheus' Go client reports it.
func softLimit(limits []byte, name string) (float64, bool) {
	for line := range strings.Lines(string(limits)) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		if f[0] == "unlimited" {
			return float64(math.MaxUint64), true
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// netOctets are the IpExt InOctets and OutOctets of the process's network
// namespace (/proc/self/net/netstat), as Prometheus' Go client reads them.
func netOctets() (in, out float64, ok bool) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		rest, isExt := strings.CutPrefix(line, "IpExt:")
		if !isExt {
			continue
		}
		f := strings.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		var haveIn, haveOut bool
		for i, n := range names {
			if i >= len(f) {
				break
			}
			switch n {
			case "InOctets":
				in, _ = strconv.ParseFloat(f[i], 64)
				haveIn = true
			case "OutOctets":
				out, _ = strconv.ParseFloat(f[i], 64)
				haveOut = true
			}
		}
		return in, out, haveIn && haveOut
	}
	return 0, 0, false
}
