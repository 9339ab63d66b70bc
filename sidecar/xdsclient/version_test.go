package xdsclient

import (
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
)

// versioned is a VersionedHandler over a recorder: it records the version
// of every set applied and every version-only update.
type versioned struct {
	*recorder
	mu       sync.Mutex
	plain    int               // Apply calls: must stay 0
	applied  map[string]string // type -> version of the last accepted ApplyVersion
	current  map[string]string // type -> version the handler runs, by either method
	versions []string          // "A <type> <version>" and "S <type> <version>", in order
}

func newVersioned() *versioned {
	return &versioned{recorder: newRecorder(), applied: map[string]string{}, current: map[string]string{}}
}

func (v *versioned) Apply(typeURL string, resources map[string]*anypb.Any) error {
	v.mu.Lock()
	v.plain++
	v.mu.Unlock()
	return v.recorder.Apply(typeURL, resources)
}

func (v *versioned) ApplyVersion(typeURL, version string, resources map[string]*anypb.Any) error {
	err := v.recorder.Apply(typeURL, resources)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.versions = append(v.versions, "A "+shortType(typeURL)+" "+version)
	if err == nil {
		v.applied[typeURL], v.current[typeURL] = version, version
	}
	return err
}

func (v *versioned) SetVersion(typeURL, version string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.versions = append(v.versions, "S "+shortType(typeURL)+" "+version)
	v.current[typeURL] = version
}

func (v *versioned) get(m map[string]string, typeURL string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return m[typeURL]
}

func (v *versioned) log() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.versions)
}

// TestVersionedHandlerGetsVersions: a VersionedHandler gets every set with
// the version of the response it came in (version_info; delta's
// system_version_info), never through plain Apply; a refused version is
// not recorded as running; a response that changes only the version (state
// of the world resends unchanged types with the new version) reaches
// SetVersion, not ApplyVersion, and a repeat of the same version neither.
func TestVersionedHandlerGetsVersions(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, serverOpts{ads: p.ads})
			srv.set(snapshot(t, "v1", "l1"))
			h := newVersioned()
			runClient(t, Options{Target: srv.addr, Delta: p.delta, Backoff: Backoff{Base: 100 * time.Millisecond}}, h)
			for _, typ := range DefaultTypes {
				eventually(t, waitFor, shortType(typ)+" v1 applied", func() bool { return h.get(h.applied, typ) == "v1" })
			}

			srv.set(snapshot(t, "v2", "l1", "bad-l2"))
			eventually(t, waitFor, "v2 NACKed", func() bool { return len(srv.nacks(ListenerType)) > 0 })
			if got := h.get(h.current, ListenerType); got != "v1" {
				t.Errorf("listeners run version %q after v2 was refused, want v1", got)
			}

			srv.set(snapshot(t, "v3", "l1", "l3"))
			eventually(t, waitFor, "listeners v3 applied", func() bool { return h.get(h.applied, ListenerType) == "v3" })
			eventually(t, waitFor, "v3 ACKed", func() bool { return srv.acked(ListenerType, "v3") })
			if !p.delta {
				// The other types came again, unchanged, as v2 and v3.
				for _, typ := range []string{ClusterType, EndpointType, RouteType} {
					eventually(t, waitFor, shortType(typ)+" at v3", func() bool { return h.get(h.current, typ) == "v3" })
					if got := h.get(h.applied, typ); got != "v1" {
						t.Errorf("%s applied again as %q: an unchanged set must only update the version", shortType(typ), got)
					}
				}
			}
			log := h.log()
			for i, e := range log {
				if slices.Contains(log[:i], e) && e[0] == 'S' {
					t.Errorf("%q given twice: %v", e, log)
				}
			}
			h.mu.Lock()
			if h.plain != 0 {
				t.Errorf("Apply called %d times on a VersionedHandler", h.plain)
			}
			h.mu.Unlock()
			t.Logf("%v", log)
		})
	}
}
