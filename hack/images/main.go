// Command images builds Skein's container images without a Docker engine:
// each is a list of static Go binaries in one layer on an empty base,
// written as a docker-archive tarball (bin/images/NAME.tar) that
// `ctr images import` loads into containerd (hack/images/load.sh).
//
// Run it from the module root:
//
//	go run ./hack/images [-images operator,echo] [-out bin/images] [-tag dev]
//
// An image whose main package does not exist yet is skipped with a message.
// It prints one line per image: name, digest, image ID (the config digest,
// which `crictl images` shows; containerd rewrites a docker archive's
// manifest on import, so its digest there differs) and tarball size.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// options are the flags that apply to every image.
type options struct {
	out      string // directory of the tarballs; binaries go to out/bin
	tag      string // tag of every image whose Spec has none
	revision string // org.opencontainers.image.revision label, when set
	arch     string // GOARCH of the binaries and the image
}

// result is one image written.
type result struct {
	ref     string // name with tag
	digest  string // manifest digest
	imageID string // config digest
	path    string // tarball
	size    int64  // tarball size in bytes
}

// errMissing says that an image's main package does not exist yet.
var errMissing = errors.New("main package does not exist yet")

func main() {
	var o options
	images := flag.String("images", "", "comma-separated images to build (default all): "+names())
	flag.StringVar(&o.out, "out", "bin/images", "directory for the tarballs (binaries go to OUT/bin)")
	flag.StringVar(&o.tag, "tag", "dev", "tag of the Skein images (the pause image keeps its own)")
	flag.StringVar(&o.revision, "revision", "", "source revision for the org.opencontainers.image.revision label")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture of the binaries and images")
	flag.Parse()

	specs, err := selectSpecs(*images)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(2)
	}
	for _, s := range specs {
		r, err := buildImage(s, o)
		if errors.Is(err, errMissing) {
			fmt.Printf("skip %s: %v\n", s.Name, err)
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "images: %s: %v\n", s.Name, err)
			os.Exit(1)
		}
		fmt.Printf("%-45s %s id %s %6.1f MiB %s\n", r.ref, r.digest, r.imageID, float64(r.size)/(1<<20), r.path)
	}
}

func names() string {
	var n []string
	for _, s := range catalog {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

// selectSpecs returns the catalog's images named in list, or all for "".
func selectSpecs(list string) ([]Spec, error) {
	if list == "" {
		return catalog, nil
	}
	var specs []Spec
next:
	for _, n := range strings.Split(list, ",") {
		for _, s := range catalog {
			if s.Name == strings.TrimSpace(n) {
				specs = append(specs, s)
				continue next
			}
		}
		return nil, fmt.Errorf("unknown image %q; known: %s", n, names())
	}
	return specs, nil
}

// buildImage builds s's binaries and writes its tarball to o.out/NAME.tar.
func buildImage(s Spec, o options) (*result, error) {
	for _, b := range s.Binaries {
		if _, err := os.Stat(b.Package); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", b.Package, errMissing)
		}
	}
	tag := s.Tag
	if tag == "" {
		tag = o.tag
	}
	ref, err := name.NewTag(s.Repository+":"+tag, name.StrictValidation)
	if err != nil {
		return nil, err
	}

	var files []File
	for _, b := range s.Binaries {
		out := filepath.Join(o.out, "bin", s.Name, filepath.Base(b.Path))
		if err := buildStatic(b.Package, out, "linux", o.arch, b.Tags); err != nil {
			return nil, err
		}
		files = append(files, File{Path: b.Path, Source: out})
	}
	if s.Iptables {
		ipt, err := iptablesFiles()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		files = append(files, ipt...)
	}
	labels := map[string]string{
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.title":       s.Title,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     tag,
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	img, err := Build(files, Config{
		Entrypoint:   s.Entrypoint,
		UID:          s.UID,
		GID:          s.GID,
		User:         s.User,
		Labels:       labels,
		OS:           "linux",
		Architecture: o.arch,
	})
	if err != nil {
		return nil, err
	}

	path := filepath.Join(o.out, s.Name+".tar")
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &result{ref: ref.String(), digest: digest.String(), imageID: id.String(), path: path, size: fi.Size()}, nil
}
