// Command etcd is etcd's own server main, built from the pinned release
// through the Go module proxy so that envtest and the local cluster need no
// prebuilt download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
