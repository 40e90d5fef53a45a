package overlay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/hostile"
	"github.com/p2psock/p2psock/overlay"
)

// A fifth of the nodes are hostile: they acknowledge the fragments they
// should forward and drop them, sign refusals of the messages they dropped,
// answer lookups only with each other, and swallow the messages to keys they
// are the closest to. Every message by ID still reaches its destination, and
// messages to keys reach the honest node closest to the key.
func TestHostileNodesAreRoutedAround(t *testing.T) {
	testnet.CheckLeaks(t)
	nw, err := hostile.Build(hostile.Options{N: 30, Hostile: 0.2, Behave: hostile.All, Config: overlay.Config{Logger: testnet.Logger(t)}})
	require.NoError(t, err)
	t.Cleanup(nw.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw.Settle(ctx)

	r := nw.Measure(ctx, hostile.Plan{SendTo: 20, SendToKey: 40, Timeout: 20 * time.Second})
	for _, f := range r.Failures {
		t.Log(f)
	}
	t.Logf("SendTo %d/%d, SendToKey exact %d/%d", r.SendToOK, r.SendTo, r.SendToKeyExact, r.SendToKey)
	require.Equal(t, 20, r.SendTo)
	require.Equal(t, 40, r.SendToKey)
	require.Equal(t, r.SendTo, r.SendToOK, "messages by ID that did not reach their destination")
	require.GreaterOrEqual(t, r.SendToKeyExact, 38, "messages to keys delivered to the closest honest node (95 %)")
}
