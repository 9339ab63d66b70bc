package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// captureRules is a nat table using every extension skein-init's rules use:
// the tcp match, owner, REDIRECT, addresses and interfaces.
const captureRules = `*nat
:SKEIN_OUTPUT - [0:0]
-A OUTPUT -p tcp -j SKEIN_OUTPUT
-A SKEIN_OUTPUT -o lo -m owner ! --uid-owner 7117 -j RETURN
-A SKEIN_OUTPUT -m owner --gid-owner 7117 -j RETURN
-A SKEIN_OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 15000 -j RETURN
-A SKEIN_OUTPUT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`

// TestInitImageRunsIptables builds the init image, unpacks its layer into a
// directory and runs the image's own iptables-restore there (chroot, in a
// network namespace of its own): the binary, its libraries, the loader and
// the extension modules that skein-init's rules need are all in the image.
func TestInitImageRunsIptables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chroot and a network namespace")
	}
	if _, err := os.Stat(xtablesBinary); err != nil {
		t.Skipf("%s not installed", xtablesBinary)
	}
	spec := Spec{Name: "init-test", Repository: "example.test/skein/init", Binaries: []Binary{{Package: "./testdata/hello", Path: "/skein-init"}},
		Entrypoint: []string{"/skein-init"}, Iptables: true}
	r, err := buildImage(spec, options{out: t.TempDir(), tag: "t", arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	root := unpack(t, r.path, r.ref)

	version, err := exec.Command("chroot", root, "/usr/sbin/iptables-save", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(version), "nf_tables") {
		t.Fatalf("iptables-save in the image: %v: %s", err, version)
	}
	ns := "skein-images-test"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	for _, tool := range []string{"/usr/sbin/iptables-restore", "/usr/sbin/ip6tables-restore"} {
		rules := captureRules
		if strings.Contains(tool, "ip6") {
			rules = strings.ReplaceAll(rules, "127.0.0.1/32", "::1/128")
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "chroot", root, tool)
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s in the image refused skein-init's kind of rules: %v: %s", tool, err, out)
		}
	}
	saved, err := exec.Command("ip", "netns", "exec", ns, "chroot", root, "/usr/sbin/iptables-save", "-t", "nat").CombinedOutput()
	if err != nil || !strings.Contains(string(saved), "-j REDIRECT --to-ports 15001") {
		t.Errorf("iptables-save in the image does not show the rules: %v: %s", err, saved)
	}
}

// unpack writes the one layer of the image at path into a new directory.
func unpack(t *testing.T, path, ref string) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %d", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return root
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, os.FileMode(hdr.Mode))
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, dst)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(dst, data, os.FileMode(hdr.Mode))
			}
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", hdr.Name, err)
		}
	}
}
