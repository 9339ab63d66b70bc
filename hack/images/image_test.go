package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var helloSpec = Spec{
	Name:        "hello",
	Repository:  "example.test/skein/hello",
	Binaries:    []Binary{{Package: "./testdata/hello", Path: "/usr/bin/hello"}},
	Entrypoint:  []string{"/usr/bin/hello", "--loud"},
	UID:         7117,
	GID:         7117,
	User:        "skein-proxy",
	Title:       "hello",
	Description: "a test image",
}

// TestBuildImage builds an image from a tiny Go program and reads the
// tarball back as `ctr images import` would: name, config and files.
func TestBuildImage(t *testing.T) {
	o := options{out: t.TempDir(), tag: "t1", revision: "0123abc", arch: "amd64"}
	r, err := buildImage(helloSpec, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.ref != "example.test/skein/hello:t1" || r.path != filepath.Join(o.out, "hello.tar") {
		t.Errorf("wrote %s to %s, want example.test/skein/hello:t1 to OUT/hello.tar", r.ref, r.path)
	}

	// The tarball names the image, so that an import tags it.
	tag, err := name.NewTag(r.ref)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(r.path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || !reflect.DeepEqual(manifest[0].RepoTags, []string{"example.test/skein/hello:t1"}) {
		t.Fatalf("manifest.json %+v, want one image tagged example.test/skein/hello:t1", manifest)
	}
	img, err := tarball.ImageFromPath(r.path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != r.digest {
		t.Errorf("digest read back %s, printed %s", d, r.digest)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := v1.Config{
		Entrypoint: []string{"/usr/bin/hello", "--loud"},
		User:       "7117:7117",
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.source":      "https://github.com/skeinmesh/skein",
			"org.opencontainers.image.title":       "hello",
			"org.opencontainers.image.description": "a test image",
			"org.opencontainers.image.version":     "t1",
			"org.opencontainers.image.revision":    "0123abc",
		},
	}
	if !reflect.DeepEqual(cf.Config, wantCfg) {
		t.Errorf("config\n got %+v\nwant %+v", cf.Config, wantCfg)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Created.Unix() != 0 {
		t.Errorf("platform %s/%s created %v, want linux/amd64 at the epoch", cf.OS, cf.Architecture, cf.Created)
	}

	files := layerFiles(t, img)
	bin, ok := files["usr/bin/hello"]
	if !ok {
		t.Fatalf("no usr/bin/hello in the layer; it has %v", keys(files))
	}
	if bin.hdr.Mode != 0o755 || bin.hdr.Uid != 0 || bin.hdr.Gid != 0 || bin.hdr.Typeflag != tar.TypeReg {
		t.Errorf("usr/bin/hello: mode %o owner %d:%d type %c, want a 755 file owned by root",
			bin.hdr.Mode, bin.hdr.Uid, bin.hdr.Gid, bin.hdr.Typeflag)
	}
	built, err := os.ReadFile(filepath.Join(o.out, "bin", "hello", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bin.data, built) {
		t.Errorf("usr/bin/hello in the image differs from the binary built")
	}
	assertStatic(t, bin.data)
	if p := string(files["etc/passwd"].data); !strings.Contains(p, "\nskein-proxy:x:7117:7117:") {
		t.Errorf("/etc/passwd has no skein-proxy entry:\n%s", p)
	}
	if g := string(files["etc/group"].data); !strings.Contains(g, "\nskein-proxy:x:7117:") {
		t.Errorf("/etc/group has no skein-proxy entry:\n%s", g)
	}
	if tmp := files["tmp/"]; tmp.hdr.Mode != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", tmp.hdr.Mode)
	}

	// The same source gives the same image, to the byte.
	o2 := o
	o2.out = t.TempDir()
	r2, err := buildImage(helloSpec, o2)
	if err != nil {
		t.Fatal(err)
	}
	if r2.digest != r.digest {
		t.Errorf("built twice: digests %s and %s, want equal", r.digest, r2.digest)
	}
	a, _ := os.ReadFile(r.path)
	b, _ := os.ReadFile(r2.path)
	if !bytes.Equal(a, b) {
		t.Errorf("built twice: the tarballs differ")
	}
}

func TestBuildImageSkipsMissingPackage(t *testing.T) {
	s := helloSpec
	s.Binaries = []Binary{{Package: "./testdata/not-yet", Path: "/not-yet"}}
	out := t.TempDir()
	_, err := buildImage(s, options{out: out, tag: "t1", arch: "amd64"})
	if !errors.Is(err, errMissing) {
		t.Fatalf("error %v, want errMissing", err)
	}
	if _, err := os.Stat(filepath.Join(out, "hello.tar")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a tarball was written for a missing package: %v", err)
	}
}

func TestRootImageHasOnlyRoot(t *testing.T) {
	layer, err := layerTar(nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, bytes.NewReader(layer))
	if p := string(files["etc/passwd"].data); p != "root:x:0:0:root:/root:/sbin/nologin\n" {
		t.Errorf("/etc/passwd of a root image:\n%s", p)
	}
}

// TestCatalog pins the names other parts of Skein rely on: config/ and the
// mesh ConfigMap name the Skein images; containerd's CRI runs the pause
// image as every pod's sandbox, by this exact name.
func TestCatalog(t *testing.T) {
	want := map[string]string{
		"operator": "docker.io/skeinmesh/skein-operator:dev",
		"proxy":    "docker.io/skeinmesh/skein-proxy:dev",
		"init":     "docker.io/skeinmesh/skein-init:dev",
		"echo":     "docker.io/skeinmesh/test-echo:dev",
		"pause":    "registry.k8s.io/pause:3.10",
	}
	got := map[string]string{}
	for _, s := range catalog {
		tag := s.Tag
		if tag == "" {
			tag = "dev"
		}
		got[s.Name] = s.Repository + ":" + tag
		if len(s.Binaries) == 0 || s.Entrypoint[0] != s.Binaries[0].Path {
			t.Errorf("%s: entrypoint %v is not its first binary", s.Name, s.Entrypoint)
		}
		if (s.UID == 0) != (s.Name == "init") {
			t.Errorf("%s: UID %d; only skein-init runs as root", s.Name, s.UID)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("catalog\n got %v\nwant %v", got, want)
	}
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

func readTar(t *testing.T, r io.Reader) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = tarFile{hdr: hdr, data: data}
	}
}

func keys(m map[string]tarFile) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// assertStatic fails unless bin is a linux/amd64 ELF with no dynamic
// loader, so that it runs on an empty base.
func assertStatic(t *testing.T, bin []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary in the image is not ELF: %v", err)
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("binary machine %v, want x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary needs a dynamic loader; want it static (CGO_ENABLED=0)")
		}
	}
}
