package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// run is p2pcat, with its arguments (without the program name) and its
// standard streams passed in, so that tests run it in-process. -h prints the
// manual on stdout. An interrupt (ctx ending) ends every mode without an
// error; what went wrong otherwise is for exitStatus to report.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, pos, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, manual)
		return nil
	}
	if err != nil {
		return err
	}
	err = dispatch(ctx, o, pos, stdin, stdout, stderr)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // interrupted
	}
	return err
}

// exitStatus reports err on stderr, in one line, and returns p2pcat's exit
// status: 0 success, 1 a runtime failure, 2 a usage error.
func exitStatus(err error, stderr io.Writer) int {
	return cli.Program{Name: "p2pcat", Hint: " (see p2pcat -h)"}.ExitStatus(err, stderr)
}

// dispatch runs the mode that the positional arguments and the flags name.
func dispatch(ctx context.Context, o *options, pos []string, stdin io.Reader, stdout, stderr io.Writer) error {
	arg := func(i int) string {
		if i < len(pos) {
			return pos[i]
		}
		return ""
	}
	want := func(n int, what string) error {
		if len(pos) != n {
			return cli.Usagef("%s takes %d argument(s), got %d", what, n-1, len(pos)-1)
		}
		return nil
	}
	switch {
	case arg(0) == "id":
		if err := want(1, "id"); err != nil {
			return err
		}
		id, release, err := identity(o, stderr, false)
		if err != nil {
			return err
		}
		release()
		fmt.Fprintln(stdout, id.ID())
		return nil
	case arg(0) == "serve":
		if err := want(1, "serve"); err != nil {
			return err
		}
		return serve(ctx, o, stdout, stderr)
	case arg(0) == "view":
		return viewCmd(ctx, o, pos[1:], stderr)
	case arg(0) == "dht":
		return dhtCmd(ctx, o, pos[1:], stdout, stderr)
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
		if err := want(1, "-u"); err != nil {
			return err
		}
		return datagramSend(ctx, o, pos[0], stdin, stdout, stderr)
	case o.listen:
		if len(pos) != 0 {
			return cli.Usagef("-l takes no other argument, got %q", pos[0])
		}
		return streamListen(ctx, o, stdin, stdout, stderr)
	case len(pos) == 1:
		id, err := p2psock.ParseID(pos[0])
		if err != nil {
			return cli.Usagef("%q is not a node ID (52 base32 characters)", pos[0])
		}
		return streamConnect(ctx, o, id, stdin, stdout, stderr)
	case len(pos) > 1:
		return cli.Usagef("unexpected argument %q", pos[1])
	}
	return cli.Usagef("nothing to do: give an ID, -l, -u, -g, id, serve, view or dht")
}
