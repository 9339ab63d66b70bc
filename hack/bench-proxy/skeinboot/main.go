// Command skeinboot writes the Envoy bootstrap that `make bench-proxy` gives
// skein-proxy: it fills the ${NAME} placeholders of a template, optionally
// adds unused STATIC clusters (the 1,000-cluster memory measurement), and
// checks the result as Envoy would read it (package envoyboot).
//
//	skeinboot -template skein-bootstrap.yaml -set SKEIN_PORT=18081 -set BACKEND_PORT=18080 \
//	    [-extra-clusters 1000] [-out bootstrap.yaml]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/skeinmesh/skein/hack/bench-proxy/envoyboot"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "skeinboot:", err)
		os.Exit(1)
	}
}

type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }

func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	s[k] = val
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("skeinboot", flag.ContinueOnError)
	template := fs.String("template", "", "the bootstrap template (YAML with ${NAME} placeholders)")
	extra := fs.Int("extra-clusters", 0, "unused STATIC clusters to add, copies of the template's \""+envoyboot.TemplateCluster+"\" cluster")
	out := fs.String("out", "-", "where to write the bootstrap; - is stdout")
	vars := setFlags{}
	fs.Var(vars, "set", "NAME=VALUE for a ${NAME} placeholder (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *template == "" {
		return errors.New("-template is required")
	}
	text, err := os.ReadFile(*template)
	if err != nil {
		return err
	}
	b, err := envoyboot.Render(string(text), vars, *extra)
	if err != nil {
		return fmt.Errorf("%s: %w", *template, err)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}
