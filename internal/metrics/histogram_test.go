package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram([]float64{1, 2, 4})
	for _, v := range []float64{0.5, 1, 1.5, 3, 100} {
		h.Observe(v)
	}
	s := h.Snapshot()
	require.Equal(t, uint64(5), s.Count)
	require.InDelta(t, 106.0, s.Sum, 1e-9)
	require.Equal(t, map[float64]uint64{1: 2, 2: 3, 4: 4}, s.Buckets) // cumulative; 100 only in Count
}

func TestOps(t *testing.T) {
	o := NewOps("add", "get")
	o.Done("add", time.Now(), nil)
	o.Done("add", time.Now(), errors.New("x"))
	o.Done("unknown", time.Now(), nil)
	s := o.Snapshot()
	require.Len(t, s, 2)
	require.Equal(t, OpSnapshot{Name: "add", Calls: 2, Errors: 1}, OpSnapshot{Name: s[0].Name, Calls: s[0].Calls, Errors: s[0].Errors})
	require.Equal(t, uint64(2), s[0].Latency.Count)
	require.Equal(t, uint64(0), s[1].Calls)
}
