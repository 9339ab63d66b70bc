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
// returned (Config's contract). Memory stays bounded by keeping two
// generations: rotate, called once per regeneration round, forgets what
// neither that round nor the one before used.
type hasher struct {
	mu        sync.Mutex
	cur, prev map[types.Resource]string
}

func newHasher() *hasher {
	return &hasher{cur: map[types.Resource]string{}, prev: map[types.Resource]string{}}
}

// rotate starts a new generation.
func (h *hasher) rotate() {
	h.mu.Lock()
	h.prev, h.cur = h.cur, make(map[types.Resource]string, len(h.cur))
	h.mu.Unlock()
}

// hash returns r's version.
func (h *hasher) hash(r types.Resource) (string, error) {
	h.mu.Lock()
	v, ok := h.cur[r]
	if !ok {
		if v, ok = h.prev[r]; ok {
			h.cur[r] = v
		}
	}
	h.mu.Unlock()
	if ok {
		return v, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("marshal %s: %w", cache.GetResourceName(r), err)
	}
	sum := sha256.Sum256(b)
	v = hex.EncodeToString(sum[:12])
	h.mu.Lock()
	h.cur[r] = v
	h.mu.Unlock()
	return v, nil
}
