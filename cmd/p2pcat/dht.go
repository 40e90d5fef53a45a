package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/cli"
	"github.com/p2psock/p2psock/p2psock"
)

// dhtCmd is "p2pcat dht add|rm|get|watch <key> [value]". Its exit status
// says whether it did what it was asked: add fails when no other node is
// there to keep the value (it would end with this process), rm when this
// node had no such value, get when the key holds nothing.
func dhtCmd(ctx context.Context, o *options, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("dht needs a command: add, rm, get or watch")
	}
	cmd, args := args[0], args[1:]
	need := map[string]int{"add": 2, "rm": 2, "get": 1, "watch": 1}
	k, ok := need[cmd]
	if !ok {
		return cli.Usagef("unknown dht command %q: want add, rm, get or watch", cmd)
	}
	if len(args) != k {
		return cli.Usagef("dht %s takes %d argument(s), got %d", cmd, k, len(args))
	}
	if cmd == "add" && o.ttl <= 0 {
		return cli.Usagef("-ttl must be positive")
	}
	spec := nodeSpec{ownID: cmd == "add" || cmd == "rm", client: cmd != "watch"} // values belong to the identity
	return withNode(ctx, o, stderr, spec, func(n *p2psock.Node, d *dht.DHT) error {
		octx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		key := args[0]
		switch cmd {
		case "add":
			if len(n.Contacts()) == 0 {
				return &failure{msg: "dht add: no other node in the network to keep the value (it would end with this p2pcat)"}
			}
			return failf("dht add", d.Add(octx, key, []byte(args[1]), o.ttl))
		case "rm":
			mine, err := d.GetFrom(octx, key, n.ID())
			if err != nil {
				return failf("dht rm", err)
			}
			found := false
			for _, r := range mine {
				found = found || string(r.Value) == args[1]
			}
			if !found {
				return &failure{msg: fmt.Sprintf("dht rm: this node has no value %q under %q", args[1], key)}
			}
			return failf("dht rm", d.Remove(octx, key, []byte(args[1])))
		case "get":
			recs, err := d.Get(octx, key)
			if err != nil {
				return failf("dht get", err)
			}
			if len(recs) == 0 {
				return &failure{msg: fmt.Sprintf("dht get: nothing under %q", key)}
			}
			for _, r := range recs {
				if o.verbose > 0 {
					fmt.Fprintf(stdout, "%s\t%s\t%s\n", short(r.Owner), r.Expires.Format(time.RFC3339), r.Value)
				} else {
					fmt.Fprintf(stdout, "%s\n", r.Value)
				}
			}
			return nil
		case "watch":
			ch, err := d.Watch(ctx, key)
			if err != nil {
				return failf("dht watch", err)
			}
			for ev := range ch {
				fmt.Fprintf(stdout, "%s %s %s\n", ev.Type, short(ev.Record.Owner), ev.Record.Value)
			}
			return ctx.Err()
		}
		return nil
	})
}
