package upstream

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkPick: one round-robin pick over 10 hosts.
func BenchmarkPick(b *testing.B) {
	var addrs []string
	for i := range 10 {
		addrs = append(addrs, "10.0.0."+strconv.Itoa(i+1)+":80")
	}
	c := mustCompile(b, staticCluster(b, "web", addrs...))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h, _ := c.Pick(nil)
			h.Acquire()
			h.Release()
		}
	})
}

// BenchmarkHTTP1Idle: taking an idle keep-alive connection (liveness
// peek included) and giving it back.
func BenchmarkHTTP1Idle(b *testing.B) {
	bk := startH1(b)
	c := mustCompile(b, staticCluster(b, "web", bk.addr))
	h, _ := c.Pick(nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cn, err := c.HTTP1(ctx, h)
		if err != nil {
			b.Fatal(err)
		}
		cn.Release(true)
	}
}
