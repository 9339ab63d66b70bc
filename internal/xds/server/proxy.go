package server

import (
	"sync"
	"time"

	"github.com/skeinmesh/skein/internal/mesh"
)

// proxyState is one connected proxy (one node ID): its published versions,
// the objects they came from, and what it ACKed and NACKed.
type proxyState struct {
	proxy mesh.Proxy

	// gen serializes generating and publishing this proxy's snapshot, so
	// that a later generation, which read a newer model, is never
	// overwritten by an earlier one.
	gen sync.Mutex

	// streams counts the proxy's open streams; guarded by Server.mu.
	streams int

	mu sync.Mutex
	// closed is set when the proxy's last stream closed; nothing is
	// published for it after that.
	closed bool
	// versions are the published snapshot's versions by type URL; nil
	// until the first publication.
	versions map[string]string
	// sources are the published snapshot's sources.
	sources []mesh.ObjectRef
	// types are the types the proxy subscribed to, by type URL.
	types map[string]*typeStatus
	// pushStart is when the earliest change not yet ACKed by the proxy
	// happened; zero when none is pending.
	pushStart time.Time
	// synced and rejected are the proxy's state as last computed.
	synced, rejected bool
	// nack is the latest NACK of a current version, for Status.
	nack string
}

// typeStatus is what a proxy did with one type.
type typeStatus struct {
	// acked is the last version the proxy ACKed.
	acked string
	// nackVersion and nackMessage are the last version the proxy NACKed,
	// and its error_detail message.
	nackVersion, nackMessage string
}

func newProxyState(p mesh.Proxy) *proxyState {
	return &proxyState{proxy: p, types: map[string]*typeStatus{}}
}

// typeLocked returns the status of a type, subscribing the proxy to it.
func (ps *proxyState) typeLocked(typeURL string) *typeStatus {
	ts, ok := ps.types[typeURL]
	if !ok {
		ts = &typeStatus{}
		ps.types[typeURL] = ts
	}
	return ts
}

// recomputeLocked updates synced and rejected from the types' states and
// reports whether either changed. A proxy is synced when it subscribed to
// at least one type and ACKed the current version of each (a type the
// snapshot does not have counts as ACKed); rejected when the current
// version of some type got a NACK.
func (ps *proxyState) recomputeLocked() (changed bool) {
	synced, rejected, nack := len(ps.types) > 0 && ps.versions != nil, false, ""
	for t, ts := range ps.types {
		cur := ps.versions[t]
		if cur != "" && ts.acked != cur {
			synced = false
		}
		if cur != "" && ts.nackVersion == cur {
			rejected = true
			nack = ps.proxy.ID + ": " + shortType(t) + " version " + cur + ": " + ts.nackMessage
		}
	}
	changed = synced != ps.synced || rejected != ps.rejected || nack != ps.nack
	ps.synced, ps.rejected, ps.nack = synced, rejected, nack
	return changed
}
