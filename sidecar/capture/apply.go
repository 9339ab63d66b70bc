package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// commandTimeout bounds each iptables-save or iptables-restore run.
const commandTimeout = 30 * time.Second

// Apply installs cfg's rules in the nat table of the current network
// namespace, for IPv4 and, when cfg.IPv6, for IPv6. Re-running it replaces
// Skein's chains and jumps, never duplicating them. Each table is written by
// one iptables-restore, which commits all of it or none of it; when IPv6 is
// refused after IPv4 was written, IPv4's nat table is restored to what it
// was, so a failed Apply leaves both tables as it found them.
func Apply(ctx context.Context, cfg Config) error {
	families := []Family{IPv4}
	if cfg.IPv6 {
		families = append(families, IPv6)
	}
	inputs := make(map[Family]string)
	for _, f := range families {
		rules, err := Rules(cfg, f)
		if err != nil {
			return err
		}
		inputs[f] = rules
		for _, tool := range []string{f.command("save"), f.command("restore")} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("%s is not installed: %w", tool, err)
			}
		}
	}

	type written struct {
		family Family
		before string
	}
	var done []written
	for _, f := range families {
		before, err := Save(ctx, f)
		if err == nil {
			err = restore(ctx, f, withoutOldJumps(inputs[f], before), "--noflush")
		}
		if err != nil {
			for _, w := range slices.Backward(done) {
				if rerr := restore(context.WithoutCancel(ctx), w.family, w.before); rerr != nil {
					err = fmt.Errorf("%w; then putting back the %s nat table failed too: %w", err, w.family, rerr)
				}
			}
			return err
		}
		done = append(done, written{f, before})
	}
	return nil
}

// Save returns iptables-save's (or ip6tables-save's) view of the nat table.
func Save(ctx context.Context, f Family) (string, error) {
	return run(ctx, f.command("save"), "", "-t", "nat")
}

func restore(ctx context.Context, f Family, input string, args ...string) error {
	_, err := run(ctx, f.command("restore"), input, args...)
	return err
}

// withoutOldJumps returns rules with a -D line, before the first -A, for each
// jump to a Skein chain that the saved nat table already has in PREROUTING or
// OUTPUT. Declaring a chain empties it, but the jumps live in built-in chains
// that are not Skein's to flush.
func withoutOldJumps(rules, saved string) string {
	var deletes strings.Builder
	for l := range strings.Lines(saved) {
		l = strings.TrimSpace(l)
		rest, ok := strings.CutPrefix(l, "-A ")
		if !ok || !(strings.HasPrefix(rest, "PREROUTING ") || strings.HasPrefix(rest, "OUTPUT ")) {
			continue
		}
		fields := strings.Fields(rest)
		if n := len(fields); n >= 3 && fields[n-2] == "-j" && slices.Contains(chains, fields[n-1]) {
			deletes.WriteString("-D " + rest + "\n")
		}
	}
	i := strings.Index(rules, "\n-A ")
	if deletes.Len() == 0 || i < 0 {
		return rules
	}
	return rules[:i+1] + deletes.String() + rules[i+1:]
}

// run runs an iptables tool with input on stdin and returns its stdout. Its
// error names the tool and carries the tool's own message.
func run(ctx context.Context, name, input string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	switch {
	case err == nil:
		return stdout.String(), nil
	case errors.Is(err, exec.ErrNotFound):
		return "", fmt.Errorf("%s is not installed: %w", name, err)
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s did not finish within %s: %w", name, commandTimeout, ctx.Err())
	case input != "":
		return "", fmt.Errorf("%s refused the nat rules (%v): %s", name, err, message(stderr.String(), input))
	default:
		return "", fmt.Errorf("%s failed (%v): %s", name, err, message(stderr.String(), input))
	}
}

// failedLine finds the input line iptables-restore names: "Error occurred at
// line: 12" (nft) or "line 12 failed" (legacy).
var failedLine = regexp.MustCompile(`line:? (\d+)`)

// message turns an iptables tool's stderr into one line: its own words
// without the usage hint, and the input line it refused, if it names one.
func message(stderr, input string) string {
	var parts []string
	for l := range strings.Lines(stderr) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Try `") {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no message")
	}
	msg := strings.Join(parts, "; ")
	if m := failedLine.FindStringSubmatch(msg); m != nil && input != "" {
		lines := strings.Split(input, "\n")
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) && lines[n-1] != "" {
			msg += fmt.Sprintf(" (line %d is %q)", n, lines[n-1])
		}
	}
	return msg
}
