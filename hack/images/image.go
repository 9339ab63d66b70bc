package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the time stamped on every file, the history and the config, so
// that the same binaries always give the same image digest.
var epoch = time.Unix(0, 0).UTC()

// Config is what an image holds besides its files.
type Config struct {
	// Entrypoint is the command the container runs, an absolute path first.
	Entrypoint []string
	// UID and GID run the entrypoint; 0 means root. A non-root UID also gets
	// an /etc/passwd and /etc/group entry named User.
	UID, GID int
	// User names UID in /etc/passwd; ignored for root.
	User string
	// Env is the environment, NAME=value; PATH is added when missing.
	Env []string
	// Labels are the config's labels (org.opencontainers.image.*).
	Labels map[string]string
	// OS and Architecture are the platform of the binaries, such as linux
	// and amd64.
	OS, Architecture string
}

// File is one file of an image's single layer.
type File struct {
	// Path is the absolute path in the image, such as /manager.
	Path string
	// Source is the file on this machine whose contents go there.
	Source string
	// Mode is the permission bits; 0 means 0755.
	Mode int64
	// Link, when set, makes the file a symbolic link to Link; Source and
	// Mode are then unused.
	Link string
}

// Build returns an image from scratch with one layer: the files, each owned
// by root, plus /etc/passwd, /etc/group and /tmp. Timestamps are fixed, so
// the digest depends on the contents of the files and cfg only.
func Build(files []File, cfg Config) (v1.Image, error) {
	layerTar, err := layerTar(files, cfg)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "hack/images",
			Comment:   "static Go binaries, /etc/passwd, /etc/group, /tmp",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.OS = cfg.OS
	cf.Architecture = cfg.Architecture
	cf.Config = v1.Config{
		Entrypoint: cfg.Entrypoint,
		User:       fmt.Sprintf("%d:%d", cfg.UID, cfg.GID),
		WorkingDir: "/",
		Env:        withPath(cfg.Env),
		Labels:     cfg.Labels,
	}
	return mutate.ConfigFile(img, cf)
}

func withPath(env []string) []string {
	for _, e := range env {
		if len(e) >= 5 && e[:5] == "PATH=" {
			return env
		}
	}
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
}

// layerTar returns the uncompressed tar of the image's one layer, its entries
// sorted by path (so a directory comes before what it holds).
func layerTar(files []File, cfg Config) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	dir := func(mode int64) entry { return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: mode}} }
	entries := map[string]entry{"/tmp": dir(0o1777)}
	add := func(p string, mode int64, data []byte) error {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("image path %q is not a clean absolute file path", p)
		}
		if _, ok := entries[p]; ok {
			return fmt.Errorf("image path %q given twice", p)
		}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = dir(0o755)
			}
		}
		entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}, data: data}
		return nil
	}
	link := func(p, target string) error {
		if err := add(p, 0o777, nil); err != nil {
			return err
		}
		entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Mode: 0o777, Linkname: target}}
		return nil
	}

	passwd, group := "root:x:0:0:root:/root:/sbin/nologin\n", "root:x:0:\n"
	if cfg.UID != 0 {
		passwd += fmt.Sprintf("%s:x:%d:%d:%s:/:/sbin/nologin\n", cfg.User, cfg.UID, cfg.GID, cfg.User)
	}
	if cfg.GID != 0 {
		group += fmt.Sprintf("%s:x:%d:\n", cfg.User, cfg.GID)
	}
	if err := add("/etc/passwd", 0o644, []byte(passwd)); err != nil {
		return nil, err
	}
	if err := add("/etc/group", 0o644, []byte(group)); err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Link != "" {
			if err := link(f.Path, f.Link); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		if err := add(f.Path, mode, data); err != nil {
			return nil, err
		}
	}

	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := entries[p]
		hdr := e.hdr
		hdr.Name = p[1:] // relative, as in images built by docker
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = epoch
		hdr.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
