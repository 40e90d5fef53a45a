package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestView: "p2pcat view" serves its node's snapshot, with the node that
// was there before it among its contacts, and its metrics.
func TestView(t *testing.T) {
	e := newEnv(t)
	anchor := e.start(t, strings.NewReader(""), "-u", "-l")
	anchorID := anchor.waitLine(`^listening as (\S+)`)[1]
	v := e.start(t, nil, "view")
	id := v.waitLine(`^node (\S+)`)[1]
	url := v.waitLine(`^view: (http://\S+/)`)[1]
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(url + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Contains(t, get(""), "<title>p2psock node</title>")
	testnet.Eventually(t, 20*time.Second, "the view lists the anchor", func() bool {
		var s struct {
			Node     struct{ ID string }
			Contacts []struct{ ID string }
		}
		require.NoError(t, json.Unmarshal([]byte(get("api/snapshot")), &s))
		require.Equal(t, id, s.Node.ID)
		for _, c := range s.Contacts {
			if c.ID == anchorID {
				return true
			}
		}
		return false
	})
	require.Contains(t, get("metrics"), `p2psock_node_info{id="`+id+`"`)
}

// TestViewFlag: -view gives any mode's node a view page; a stream between
// two loopback nodes shows on the listener's page as a direct connection,
// with its kind in the snapshot and in the metrics' path label.
func TestViewFlag(t *testing.T) {
	e := newEnv(t)
	l := e.start(t, strings.NewReader(""), "-view", "127.0.0.1:0", "-l")
	url := l.waitLine(`^view: (http://\S+/)`)[1]
	lid := l.waitLine(`^listening as (\S+)`)[1]
	stdin, keepOpen := io.Pipe() // the connector's stream stays open
	e.start(t, stdin, lid)
	t.Cleanup(func() { keepOpen.Close() }) // before the processes are waited for
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(url + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	testnet.Eventually(t, 20*time.Second, "the listener's page shows a direct connection", func() bool {
		var s struct {
			Conns []struct{ Kind string }
		}
		require.NoError(t, json.Unmarshal([]byte(get("api/snapshot")), &s))
		return len(s.Conns) == 1 && s.Conns[0].Kind == "direct"
	})
	require.Contains(t, get("metrics"), `p2psock_connections{path="direct"} 1`)
}
