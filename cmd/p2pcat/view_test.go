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
