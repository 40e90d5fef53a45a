package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/p2psock/p2psock/internal/cli"
)

// commandFunc runs a command word ("p2pcat serve"), with the arguments
// after it.
type commandFunc func(ctx context.Context, o *options, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// commands are p2pcat's command words, one a line: the first positional
// argument, if it is one of them, names the mode.
var commands = map[string]commandFunc{
	"dht":     dhtCmd,
	"doctor":  doctorCmd,
	"help":    helpCmd,
	"id":      idCmd,
	"serve":   serveCmd,
	"version": versionCmd,
	"view":    viewCommand,
}

// noArgs fails with a usage error if a command that takes no argument got
// some.
func noArgs(cmd string, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("%s takes no argument, got %q", cmd, args[0])
	}
	return nil
}

// helpCmd is "p2pcat help": the manual, as -h prints it.
func helpCmd(_ context.Context, _ *options, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	fmt.Fprint(stdout, manual)
	return nil
}

// versionCmd is "p2pcat version" and -version: the module's version and
// the commit it was built from, when the build recorded them.
func versionCmd(_ context.Context, o *options, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	version, commit, goVersion := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				commit = " " + s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" && commit != "" {
				commit += "+dirty"
			}
		}
	}
	if o != nil && o.jsonOut {
		printJSON(stdout, map[string]string{"version": version, "commit": strings.TrimSpace(commit), "go": goVersion})
		return nil
	}
	fmt.Fprintf(stdout, "p2pcat %s%s %s\n", version, commit, goVersion)
	return nil
}

// idCmd is "p2pcat id": this node's ID.
func idCmd(_ context.Context, o *options, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if err := noArgs("id", args); err != nil {
		return err
	}
	id, release, err := identity(o, stderr, false, false)
	if err != nil {
		return err
	}
	release()
	if o.jsonOut {
		printJSON(stdout, map[string]string{"id": id.ID().String()})
		return nil
	}
	fmt.Fprintln(stdout, id.ID())
	return nil
}

// printJSON writes v as one line of JSON (-json).
func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

// doctorCmd is "p2pcat doctor": what this node learns of its NAT.
func doctorCmd(ctx context.Context, o *options, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if err := noArgs("doctor", args); err != nil {
		return err
	}
	return doctor(ctx, o, stdout, stderr)
}

// viewCommand is "p2pcat view [host:port]": a node and its live page.
func viewCommand(ctx context.Context, o *options, args []string, _ io.Reader, _, stderr io.Writer) error {
	return viewCmd(ctx, o, args, stderr)
}
