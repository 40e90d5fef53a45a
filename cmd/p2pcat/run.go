package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/p2psock/p2psock/internal/cli"
)

// run is p2pcat, with its arguments (without the program name) and its
// standard streams passed in, so that tests run it in-process. -h and
// "help" print the manual on stdout. When ctx ends (SIGINT or SIGTERM, see
// cli.NotifyContext) every mode stops, half-closing its streams and leaving
// the network, and run returns cli.Interrupted; what went wrong otherwise
// is for exitStatus to report.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, pos, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, manual)
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		return versionCmd(ctx, o, pos, nil, stdout, stderr)
	}
	err = dispatch(ctx, o, pos, stdin, stdout, stderr)
	if in := cli.InterruptedBy(ctx); in != nil {
		return in
	}
	return explain(err)
}

// exitStatus reports err on stderr, in one line, and returns p2pcat's exit
// status: 0 success, 1 a runtime failure, 2 a usage error, 128+n when
// stopped by signal n (130 for SIGINT, 143 for SIGTERM).
func exitStatus(err error, stderr io.Writer) int {
	return cli.Program{Name: "p2pcat", Hint: " (see p2pcat -h)"}.ExitStatus(err, stderr)
}

// dispatch runs the mode that the positional arguments and the flags name:
// a command word first (commands.go), then the flags' modes.
func dispatch(ctx context.Context, o *options, pos []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(pos) > 0 {
		if cmd, ok := commands[pos[0]]; ok {
			return cmd(ctx, o, pos[1:], stdin, stdout, stderr)
		}
	}
	switch {
	case o.group != "":
		if len(pos) != 0 {
			return cli.Usagef("-g takes no other argument, got %q", pos[0])
		}
		return groupMode(ctx, o, stdin, stdout, stderr)
	case o.udp && o.listen:
		if len(pos) != 0 {
			return cli.Usagef("-u -l takes no other argument, got %q", pos[0])
		}
		return datagramListen(ctx, o, stdout, stderr)
	case o.udp:
		if len(pos) != 1 {
			return cli.Usagef("-u needs one destination, <ID> or @<key> (or -l to receive)")
		}
		return datagramSend(ctx, o, pos[0], stdin, stdout, stderr)
	case o.listen:
		if len(pos) != 0 {
			return cli.Usagef("-l takes no other argument, got %q", pos[0])
		}
		return streamListen(ctx, o, stdin, stdout, stderr)
	case len(pos) == 1:
		id, err := peerArg(o, pos[0])
		if err != nil {
			return cli.Usagef("%q is not a node ID (52 base32 characters), a ticket nor a command", pos[0])
		}
		if o.from != "" {
			return forwardFrom(ctx, o, id, stdout, stderr)
		}
		return streamConnect(ctx, o, id, stdin, stdout, stderr)
	case len(pos) > 1:
		return cli.Usagef("unexpected argument %q", pos[1])
	}
	return cli.Usagef("nothing to do: give an ID, -l, -u, -g or a command (p2pcat help)")
}
