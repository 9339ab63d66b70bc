// Command hello is the tiny binary that hack/images' tests put in an image.
// It imports net, whose resolver links the C library when cgo is on, so a
// build that is not static shows in the test.
package main

import (
	"fmt"
	"net"
)

func main() { fmt.Println("hello from", net.JoinHostPort("an-image", "80")) }
