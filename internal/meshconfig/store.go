package meshconfig

import "sync/atomic"

// Store holds the settings in force. Readers call Current; the ConfigMap
// reconciler calls Set with settings that Parse accepted, so a bad ConfigMap
// never replaces good settings.
type Store struct {
	current atomic.Pointer[Settings]
}

// NewStore returns a store holding the defaults.
func NewStore() *Store {
	s := &Store{}
	d := Defaults()
	s.current.Store(&d)
	return s
}

// Current returns the settings in force.
func (s *Store) Current() Settings {
	return *s.current.Load()
}

// Set puts next in force and reports whether it differs from what was.
func (s *Store) Set(next Settings) (changed bool) {
	prev := s.current.Swap(&next)
	return *prev != next
}
