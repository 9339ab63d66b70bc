package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// results are what the benchmark prints at the end.
type results struct {
	cfg    config
	cold   stats
	rounds []roundLine
	mem    []memLine
}

type roundLine struct {
	r *round
	// want is the content every proxy should hold afterwards.
	want string
}

type memLine struct {
	process, when string
	mem           memory
}

func (s stats) String() string {
	if s.n == 0 {
		return "none"
	}
	return fmt.Sprintf("first %s, p50 %s, p99 %s, max %s", ms(s.first), ms(s.p50), ms(s.p99), ms(s.last))
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// add records a round and prints it.
func (res *results) add(r *round, want string, cpu cpuUse) {
	res.rounds = append(res.rounds, roundLine{r: r, want: want})
	s := summarize(r.lat)
	progress("%s: %d/%d proxies ACKed a new version; %s", r.name, s.n, r.total, s)
	if len(r.sotw) > 0 && len(r.delta) > 0 {
		progress("  by flavour: SotW %s | delta %s", summarize(r.sotw), summarize(r.delta))
	}
	var pushed []string
	for _, t := range sortedKeys(r.extra) {
		pushed = append(pushed, fmt.Sprintf("%s %d", shortType(t), r.extra[t]))
	}
	progress("  responses the proxies answered during the round: %s", strings.Join(pushed, ", "))
	progress("  afterwards %d/%d proxies hold %s", r.checked, r.total, want)
	progress("  CPU used during the round (change, wait, 1s of quiet): operator %s, this benchmark's clients %s", ms(cpu.op), ms(cpu.bench))
	if !r.settled {
		progress("  WARNING: responses still arriving 20s after the round")
	}
}

// print prints the final tables, in markdown.
func (res *results) print() {
	c := res.cfg
	ports := "HTTP and gRPC ports"
	if !c.grpc {
		ports = "HTTP port only"
	}
	fmt.Printf("\n## Control plane benchmark: %d proxies (%s xDS), %d namespaces × %d MeshServices (%s), %d CPUs (shared)\n\n",
		c.proxies, c.xds, c.namespaces, c.services, ports, runtime.NumCPU())
	fmt.Println("| measurement | proxies | first | p50 | p99 | max | goal | result |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---|---|")
	if res.cold.n > 0 {
		fmt.Printf("| cold start: streams opened → every type ACKed | %d/%d | %s | %s | %s | %s | — | — |\n",
			res.cold.n, c.proxies, ms(res.cold.first), ms(res.cold.p50), ms(res.cold.p99), ms(res.cold.last))
	}
	for _, l := range res.rounds {
		s := summarize(l.r.lat)
		verdict := "PASS"
		if s.n < l.r.total || s.p99 >= goal {
			verdict = "MISS"
		}
		if l.r.checked < l.r.total {
			verdict += fmt.Sprintf(" (only %d hold %s)", l.r.checked, l.want)
		}
		if s.n == 0 {
			fmt.Printf("| %s | 0/%d | — | — | — | — | p99 < %s | %s |\n", l.r.name, l.r.total, goal, verdict)
			continue
		}
		fmt.Printf("| %s | %d/%d | %s | %s | %s | %s | p99 < %s | %s |\n",
			l.r.name, s.n, l.r.total, ms(s.first), ms(s.p50), ms(s.p99), ms(s.last), goal, verdict)
	}
	fmt.Println()
	fmt.Println("Latency: from the start of the API call that made the change to the proxy's ACK of the first new version of that type.")
	fmt.Println()
	fmt.Println("| process | when | VmRSS | VmHWM |")
	fmt.Println("|---|---|---:|---:|")
	for _, m := range res.mem {
		fmt.Printf("| %s | %s | %s | %s |\n", m.process, m.when, mb(m.mem.rss), mb(m.mem.hwm))
	}
}
