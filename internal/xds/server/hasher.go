package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// hasher versions resources by a hash of their deterministic encoding, and
// remembers the hash of each resource object it has seen: a Generator
// shares one object between many proxies (a namespace's outbound config),
// so a push to 1,000 proxies marshals each shared resource once instead of
// 1,000 times.
//
// It remembers objects by identity. That is safe because the map's keys
// keep the objects alive, so no other resource can take the address of one
// it remembers, and because the Generator never modifies a resource it
// returned (Config's contract). Memory stays bounded: rotate, called at the
// start of each regeneration round, forgets everything (a round follows a
// change, after which the Generator's shared objects are new ones anyway).
type hasher struct {
	mu  sync.Mutex
	cur map[types.Resource]*known
}

// known is what the hasher remembers of one resource object.
type known struct {
	version string
	// refs, computed on first use (refsOnce), are the names the resource
	// refers to, for the consistency check.
	refsOnce sync.Once
	refs     refs
}

func newHasher() *hasher {
	return &hasher{cur: map[types.Resource]*known{}}
}

// rotate starts a new generation.
func (h *hasher) rotate() {
	h.mu.Lock()
	h.cur = make(map[types.Resource]*known, len(h.cur))
	h.mu.Unlock()
}

// lookup returns what is known of r, nil if nothing.
func (h *hasher) lookup(r types.Resource) *known {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur[r]
}

// hash returns r's version.
func (h *hasher) hash(r types.Resource) (string, error) {
	if k := h.lookup(r); k != nil {
		return k.version, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("marshal %s: %w", cache.GetResourceName(r), err)
	}
	sum := sha256.Sum256(b)
	k := &known{version: hex.EncodeToString(sum[:12])}
	h.mu.Lock()
	if prior, ok := h.cur[r]; ok {
		k = prior // another goroutine got there first; keep one entry
	} else {
		h.cur[r] = k
	}
	h.mu.Unlock()
	return k.version, nil
}

// refs returns the names r refers to, remembered if r was hashed.
func (h *hasher) refs(r types.Resource) refs {
	k := h.lookup(r)
	if k == nil {
		return resourceRefs(r)
	}
	k.refsOnce.Do(func() { k.refs = resourceRefs(r) })
	return k.refs
}
