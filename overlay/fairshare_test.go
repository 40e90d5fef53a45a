package overlay

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func srcID(b byte) source { return source{id: ID{b}} }

func TestFairShareOneSourceCannotFillIt(t *testing.T) {
	f := newFairShare[int, int](64, 16, true) // 4 per source
	for i := range 100 {
		f.add(i, srcID(1), 1, i)
	}
	require.Equal(t, 4, f.len(), "a flooding source holds its share only")
	for i := 96; i < 100; i++ {
		_, ok := f.get(i)
		require.True(t, ok, "the flooder keeps its newest entries")
	}
	// Others still get in, up to their own share.
	for b := byte(2); b < 17; b++ {
		for i := range 4 {
			_, ok := f.add(int(b)*1000+i, srcID(b), 1, 0)
			require.True(t, ok)
		}
	}
	require.Equal(t, 64, f.len())
	require.Equal(t, 64, f.cost())
	// The table is full: a newcomer evicts the heaviest source's oldest
	// entry, never one beyond it.
	evicted, ok := f.add(-1, srcID(99), 1, 0)
	require.True(t, ok)
	require.Equal(t, 1, evicted)
	require.Equal(t, 64, f.len())
	require.Equal(t, 1, f.sourceCost(srcID(99)))
}

func TestFairShareEvictsTheHeaviestFirst(t *testing.T) {
	f := newFairShare[int, int](10, 2, true) // 5 per source
	sub := source{subnet: netip.MustParsePrefix("192.0.2.0/24")}
	for i := range 5 {
		f.add(i, sub, 1, 0)
	}
	for i := 10; i < 13; i++ {
		f.add(i, srcID(1), 1, 0)
	}
	f.add(20, srcID(2), 2, 0)
	require.Equal(t, 10, f.cost())
	f.add(30, srcID(3), 2, 0)
	require.Equal(t, 3, f.sourceCost(sub), "the heaviest source lost its oldest")
	_, ok := f.get(1)
	require.False(t, ok)
	_, ok = f.get(2)
	require.True(t, ok)
	require.Equal(t, 3, f.sourceCost(srcID(1)))
	require.Equal(t, 10, f.cost())
}

func TestFairShareRefusesWithoutEviction(t *testing.T) {
	f := newFairShare[int, int](8, 4, false) // 2 per source
	_, ok := f.add(1, srcID(1), 1, 0)
	require.True(t, ok)
	_, ok = f.add(2, srcID(1), 1, 0)
	require.True(t, ok)
	_, ok = f.add(3, srcID(1), 1, 0)
	require.False(t, ok, "over its share")
	_, ok = f.add(4, srcID(2), 3, 0)
	require.False(t, ok, "more than a share at once")
	f.remove(1)
	_, ok = f.add(3, srcID(1), 1, 0)
	require.True(t, ok)
	f.removeIf(func(k, _ int) bool { return k > 0 })
	require.Zero(t, f.len())
	require.Zero(t, f.cost())
	require.Empty(t, f.sources)
	require.Empty(t, f.heavy)
}
