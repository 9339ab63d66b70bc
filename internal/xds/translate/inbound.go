package translate

import "github.com/skeinmesh/skein/internal/mesh"

// Inbound is what proxy p's pod serves.
func Inbound(m *mesh.Model, p mesh.Proxy) *Resources {
	return &Resources{}
}
