package upstream

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
)

// Manager holds the proxy's clusters by name and swaps in whole CDS
// updates. Get is safe for concurrent use and allocates nothing; Update,
// SetAssignment and Close are serialised.
type Manager struct {
	mu       sync.Mutex
	clusters atomic.Pointer[map[string]*Cluster]
	// cla is the last ClusterLoadAssignment by EDS name, so that an EDS
	// cluster compiled after its endpoints arrived, or recompiled with a
	// changed Cluster, starts with them.
	cla map[string]*endpointv3.ClusterLoadAssignment
}

// NewManager returns a Manager with no clusters.
func NewManager() *Manager {
	m := &Manager{cla: map[string]*endpointv3.ClusterLoadAssignment{}}
	m.clusters.Store(&map[string]*Cluster{})
	return m
}

// Get returns the cluster of that name, or nil.
func (m *Manager) Get(name string) *Cluster { return (*m.clusters.Load())[name] }

// Update makes clusters the complete set (state of the world). Every new
// or changed cluster is compiled first; if any fails, nothing changes and
// the error lists each failure. Then the set is swapped atomically: a
// cluster whose proto is unchanged (proto.Equal) keeps its *Cluster, hosts
// and pools; a changed EDS cluster starts with the endpoints last given for
// its EDS name; replaced and removed clusters drain (Cluster.Close).
func (m *Manager) Update(clusters []*clusterv3.Cluster) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.clusters.Load()
	next := make(map[string]*Cluster, len(clusters))
	var fresh []*Cluster
	var errs []error
	for i, pb := range clusters {
		name := pb.GetName()
		if _, dup := next[name]; dup {
			errs = append(errs, fmt.Errorf("clusters[%d]: cluster %q: name: listed twice", i, name))
			continue
		}
		old := cur[name]
		if old != nil && proto.Equal(old.src, pb) {
			next[name] = old
			continue
		}
		c, err := Compile(pb)
		if err != nil {
			errs = append(errs, err)
			next[name] = nil
			continue
		}
		cla := m.cla[c.edsName]
		if cla == nil && old != nil && old.edsName == c.edsName {
			cla = old.assignment() // given to the cluster directly
		}
		if c.typ == EDS && cla != nil {
			if err := c.SetAssignment(cla); err != nil {
				errs = append(errs, err)
			}
		}
		next[name] = c
		fresh = append(fresh, c)
	}
	if len(errs) > 0 {
		for _, c := range fresh {
			c.Close()
		}
		return errors.Join(errs...)
	}
	m.clusters.Store(&next)
	eds := map[string]bool{}
	for _, c := range next {
		eds[c.edsName] = true
	}
	for name := range m.cla {
		if !eds[name] {
			delete(m.cla, name)
		}
	}
	for name, c := range cur {
		if next[name] != c {
			c.Close()
		}
	}
	return nil
}

// assignment is the last ClusterLoadAssignment c took.
func (c *Cluster) assignment() *endpointv3.ClusterLoadAssignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastCLA
}

// SetAssignment gives cla to the EDS clusters of its name and keeps it for
// clusters of that EDS name compiled later. An assignment no cluster wants
// yet is kept, not refused (EDS may answer before CDS on delta streams).
func (m *Manager) SetAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := cla.GetClusterName()
	if err := CheckAssignment(cla); err != nil {
		return err
	}
	for _, c := range *m.clusters.Load() {
		if c.typ == EDS && c.edsName == name {
			if err := c.SetAssignment(cla); err != nil {
				return err
			}
		}
	}
	m.cla[name] = cla
	return nil
}

// Close drains every cluster.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range *m.clusters.Load() {
		c.Close()
	}
	m.clusters.Store(&map[string]*Cluster{})
}
