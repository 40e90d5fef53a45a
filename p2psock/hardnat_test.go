package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
)

// TestHardNATGoesDirectSimnet: a node behind a symmetric NAT and one behind
// a port-restricted NAT, in a network whose public nodes run with the
// default configuration (circuits, no TURN), connect through a circuit;
// hard-NAT probing (256 extra ports on the symmetric side, probes to random
// ports of its IP from the other, docs/PROTOCOL.md §12.13) moves the
// connection to a direct path while a transfer runs, either side
// connecting: the bytes written before and after the move arrive intact,
// both ends report a direct path, the symmetric side's path leaves from an
// extra port, and each side counted its part.
func TestHardNATGoesDirectSimnet(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public,
		simnet.PortRestricted, simnet.Symmetric, simnet.Symmetric, simnet.PortRestricted}
	tn, _ := newVnetNet(t, kinds, func(_ int, c *Config) { c.RelayAddr = "" })
	pr1, sym1, sym2, pr2 := tn.nodes[2], tn.nodes[3], tn.nodes[4], tn.nodes[5]
	for _, p := range []struct{ a, b, sym, easy *Node }{{pr1, sym1, sym1, pr1}, {sym2, pr2, sym2, pr2}} {
		t.Run(fmt.Sprintf("%s->%s", kindName(p.a == p.sym), kindName(p.b == p.sym)), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			ca, cb := connectPair(t, ctx, p.a, p.b)
			defer ca.Close()
			defer cb.Close()
			require.True(t, ca.Path().Relayed, "a circuit first: %+v", ca.Path())

			msg := make([]byte, 1<<20)
			rand.Read(msg)
			echoed := make(chan error, 1)
			go func() {
				_, err := io.Copy(cb, cb)
				if err == nil {
					err = cb.CloseWrite()
				}
				echoed <- err
			}()
			wrote := make(chan error, 1)
			direct := make(chan struct{})
			go func() {
				_, err := ca.Write(msg[:len(msg)/2])
				if err == nil {
					select {
					case <-direct:
					case <-ctx.Done():
					}
					_, err = ca.Write(msg[len(msg)/2:])
				}
				if err == nil {
					err = ca.CloseWrite()
				}
				wrote <- err
			}()
			start := time.Now()
			testnet.Eventually(t, 20*time.Second, "both ends to go direct", func() bool {
				return !ca.Path().Relayed && !cb.Path().Relayed
			})
			t.Logf("direct after %v: %+v", time.Since(start), ca.Path())
			close(direct)
			got, err := io.ReadAll(ca)
			require.NoError(t, err)
			require.NoError(t, <-wrote)
			require.NoError(t, <-echoed)
			require.True(t, bytes.Equal(msg, got), "%d bytes back of %d", len(got), len(msg))

			symConn := ca
			if p.b == p.sym {
				symConn = cb
			}
			require.NotEqual(t, p.sym.UDPAddr().String(), symConn.Path().Local.String(),
				"the symmetric side sends from an extra port")
			require.NotZero(t, p.sym.Info().Streams.HardPortsOpened)
			require.NotZero(t, p.easy.Info().Streams.HardProbesSprayed)
			require.Zero(t, p.easy.Info().Streams.HardPortsOpened)
			require.Zero(t, p.sym.Info().Streams.HardProbesSprayed)
		})
	}
}

func kindName(sym bool) string {
	if sym {
		return "symmetric"
	}
	return "port-restricted"
}
