package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// xtablesBinary is Debian's iptables, nft backend: one binary that acts as
// iptables, iptables-save, iptables-restore and the IPv6 ones by the name it
// is called by.
const xtablesBinary = "/usr/sbin/xtables-nft-multi"

// xtablesTools are the names skein-init calls, each a link to xtablesBinary.
var xtablesTools = []string{
	"iptables", "iptables-save", "iptables-restore",
	"ip6tables", "ip6tables-save", "ip6tables-restore",
}

// iptablesFiles lists what iptables needs in an image built from scratch:
// the binary, the links that name its tools, the shared libraries and the
// loader it is linked against (as ldd finds them), and the xtables extension
// modules it loads for matches and targets (tcp, owner, REDIRECT, ...). They
// are copied from this machine's Debian iptables package.
func iptablesFiles() ([]File, error) {
	if _, err := os.Stat(xtablesBinary); err != nil {
		return nil, fmt.Errorf("iptables for the image: %w (install Debian's iptables package)", err)
	}
	files := []File{{Path: xtablesBinary, Source: xtablesBinary}}
	for _, tool := range xtablesTools {
		files = append(files, File{Path: "/usr/sbin/" + tool, Link: "xtables-nft-multi"})
	}
	libs, err := sharedLibraries(xtablesBinary)
	if err != nil {
		return nil, err
	}
	var extDir string
	for _, lib := range libs {
		// 0755: the loader must be executable for the kernel to run it.
		files = append(files, File{Path: lib, Source: lib, Mode: 0o755})
		if strings.Contains(lib, "/libxtables.so") {
			extDir = extensionDir(filepath.Dir(lib))
		}
	}
	if extDir == "" {
		return nil, fmt.Errorf("no xtables extension directory beside the libxtables that ldd %s names", xtablesBinary)
	}
	mods, err := filepath.Glob(filepath.Join(extDir, "*.so"))
	if err != nil || len(mods) == 0 {
		return nil, fmt.Errorf("no xtables extension modules in %s", extDir)
	}
	sort.Strings(mods)
	for _, m := range mods {
		files = append(files, File{Path: m, Source: m, Mode: 0o644})
	}
	return files, nil
}

// extensionDir is the xtables directory beside libxtables' directory; under
// /usr first, where libxtables looks (XTABLES_LIBDIR), even when ldd names
// /lib, which merged-/usr Debian links to /usr/lib. "" when there is none.
func extensionDir(libDir string) string {
	for _, d := range []string{filepath.Join("/usr", libDir, "xtables"), filepath.Join(libDir, "xtables")} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return ""
}

// sharedLibraries returns the absolute paths of the shared libraries and the
// loader a dynamically linked binary needs, as ldd resolves them.
func sharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
		fields := strings.Fields(sc.Text())
		for _, f := range fields {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
				break
			}
		}
	}
	sort.Strings(libs)
	return libs, nil
}
