package main

import (
	"context"
	"fmt"
	"io"
)

// serveViews lists the address of every node's view page (demo -view) and
// keeps the network up until ctx ends (an interrupt).
func serveViews(ctx context.Context, stdout io.Writer, members []member) error {
	fmt.Fprintln(stdout, "\nView pages (open one in a browser; interrupt to stop):")
	for _, m := range members {
		fmt.Fprintf(stdout, "  %s %-15s http://%s/\n", m.name, m.kind, m.node.DebugAddr())
	}
	<-ctx.Done()
	return nil
}
