package crd_test

import (
	"testing"

	"github.com/skeinmesh/skein/internal/testenv"
)

func TestInstall(t *testing.T) {
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
}
