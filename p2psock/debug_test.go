package p2psock

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/testnet"
)

// dhtNode is a node with a DHT started before its Bind, as programs do.
type dhtNode struct {
	*Node
	d *dht.DHT
}

func (n dhtNode) Close() error {
	n.d.Close()
	return n.Node.Close()
}

// newDHTNet builds n nodes with a DHT each on distinct loopback addresses;
// cfg(i) is node i's Config (nil: the zero Config).
func newDHTNet(t *testing.T, n int, cfg func(i int) Config) *testnet.Net[dhtNode] {
	t.Helper()
	testnet.CheckLeaks(t)
	start := func(i int, entries []string) (dhtNode, error) {
		var c Config
		if cfg != nil {
			c = cfg(i)
		}
		c.ListenAddr = testnet.DistinctLoopbackAddr(i)
		c.Bootstrap, c.JoinOnly = entries, len(entries) > 0
		c.Difficulty = testnet.Difficulty
		nd, err := NewNode(c)
		if err != nil {
			return dhtNode{}, err
		}
		d, err := dht.New(nd, dht.Config{})
		if err != nil {
			nd.Close()
			return dhtNode{}, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := nd.Bind(ctx); err != nil {
			d.Close()
			nd.Close()
			return dhtNode{}, err
		}
		return dhtNode{nd, d}, nil
	}
	return testnet.Start(t, n, start, func(n dhtNode) string { return n.UDPAddr().String() })
}

// promtool returns the path of Prometheus's promtool; without it the test
// is skipped, or fails under CI=true (.ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found (Debian package prometheus); CI must have it")
		}
		t.Skip("promtool not found: install Debian's prometheus package to check the exposition")
	}
	return p
}

// TestCollector scrapes a node of a network that ran messages, a group and
// DHT operations, checks the exposition with promtool, and checks that the
// figures are the node's.
func TestCollector(t *testing.T) {
	tool := promtool(t)
	tn := newDHTNet(t, 6, nil)
	a, b := tn.Nodes[5], tn.Nodes[0] // a joined last: its join looked its ID up
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.SendTo(ctx, []byte("hello"), b.ID()))
	require.NoError(t, a.d.Add(ctx, "user:alice", []byte("laptop"), time.Minute))
	recs, err := a.d.Get(ctx, "user:alice")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	g, err := a.Join(ctx, "room")
	require.NoError(t, err)
	defer g.Close()
	require.NoError(t, g.Send(ctx, []byte("hi, room")))

	reg := prometheus.NewPedanticRegistry() // checks Collect against Describe
	require.NoError(t, reg.Register(a.Collector()))
	families, err := reg.Gather()
	require.NoError(t, err)
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		require.NoError(t, enc.Encode(f))
	}
	cmd := exec.Command(tool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text.Bytes())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s\nexposition:\n%s", out, text.String())
	require.Empty(t, strings.TrimSpace(string(out)), "promtool's lint findings")

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
		metric:
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
						continue metric
					}
				}
				switch f.GetType() {
				case dto.MetricType_COUNTER:
					return m.GetCounter().GetValue()
				case dto.MetricType_GAUGE:
					return m.GetGauge().GetValue()
				case dto.MetricType_HISTOGRAM:
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		t.Fatalf("no metric %s%v in the exposition", name, labels)
		return 0
	}
	require.Equal(t, 1.0, value("p2psock_node_info", map[string]string{"id": a.ID().String()}))
	require.Equal(t, float64(len(a.Contacts())), value("p2psock_contacts", map[string]string{"path": "direct"})+
		value("p2psock_contacts", map[string]string{"path": "punched"})+value("p2psock_contacts", map[string]string{"path": "relayed"}))
	require.Zero(t, value("p2psock_connections", map[string]string{"path": "punched"}), "no NAT on loopback")
	require.Zero(t, value("p2psock_connections", map[string]string{"path": "relayed"}))
	require.GreaterOrEqual(t, value("p2psock_messages_total", map[string]string{"kind": "sent"}), 1.0)
	require.Positive(t, value("p2psock_lookup_duration_seconds", nil))
	require.Equal(t, 1.0, value("p2psock_dht_operations_total", map[string]string{"op": "add"}))
	require.Equal(t, 1.0, value("p2psock_dht_operation_duration_seconds", map[string]string{"op": "get"}))
	require.Equal(t, 1.0, value("p2psock_group_operations_total", map[string]string{"op": "join"}))
	require.Equal(t, 1.0, value("p2psock_group_operations_total", map[string]string{"op": "publish"}))
	require.Equal(t, 1.0, value("p2psock_group_trees", nil))
	require.Positive(t, value("p2psock_overlay_bytes_total", map[string]string{"direction": "out"}))
}

// TestDebugServerRefuses: the debug server answers only requests that name
// it by IP address or localhost (a page elsewhere cannot reach it by
// rebinding its own name), and at most 16 pages at once get live updates.
func TestDebugServerRefuses(t *testing.T) {
	testnet.CheckLeaks(t)
	n, err := NewNode(Config{ListenAddr: testnet.DistinctLoopbackAddr(0), DebugAddr: "127.0.0.1:0", Difficulty: testnet.Difficulty})
	require.NoError(t, err)
	defer n.Close()
	addr := n.DebugAddr().String()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(host, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := client.Do(req)
		require.NoError(t, err)
		return resp
	}
	for host, want := range map[string]int{addr: 200, "localhost:80": 200, "[::1]:80": 200, "attacker.example": 403, "attacker.example:" + strings.Split(addr, ":")[1]: 403} {
		resp := get(host, "/api/snapshot")
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, "Host %q", host)
	}
	var streams []*http.Response
	defer func() {
		for _, r := range streams {
			r.Body.Close()
		}
	}()
	for range 16 {
		resp := get(addr, "/events")
		require.Equal(t, 200, resp.StatusCode)
		streams = append(streams, resp)
	}
	resp := get(addr, "/events")
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "a 17th page")
	clients, badHost := n.debug.Refused()
	require.Equal(t, uint64(1), clients)
	require.Equal(t, uint64(2), badHost)
}
