package overlay

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddCountShrinksAfterBurst: a map of counts that swelled is rebuilt,
// with the same entries, once it holds less than a quarter of its peak,
// and not before.
func TestAddCountShrinksAfterBurst(t *testing.T) {
	m := map[int]int{}
	peak := 0
	for k := range 100 {
		m = addCount(m, &peak, k, 2)
	}
	require.Equal(t, 100, peak)
	big := reflect.ValueOf(m).Pointer()
	for k := range 75 {
		m = addCount(m, &peak, k, -1) // 2 -> 1: kept
		m = addCount(m, &peak, k, -1) // 1 -> 0: deleted
		require.Equal(t, big, reflect.ValueOf(m).Pointer(), "rebuilt at %d entries", len(m))
	}
	m = addCount(m, &peak, 75, -2)
	require.NotEqual(t, big, reflect.ValueOf(m).Pointer(), "not rebuilt at %d entries of a peak of 100", len(m))
	require.Equal(t, 24, peak)
	require.Len(t, m, 24)
	for k := 76; k < 100; k++ {
		require.Equal(t, 2, m[k])
	}
	m = addCount(m, &peak, 5, 1)
	require.Equal(t, 1, m[5])
	require.Equal(t, 25, peak)
}

// TestShrunkAfterSweep: a map whose entries expired in a sweep is rebuilt,
// with the entries left, once it holds less than a quarter of its peak,
// and not before.
func TestShrunkAfterSweep(t *testing.T) {
	m := map[int]string{}
	peak := 0
	for k := range 100 {
		m[k] = "x"
		peak = max(peak, len(m))
	}
	big := reflect.ValueOf(m).Pointer()
	for k := range 75 {
		delete(m, k)
	}
	m = shrunk(m, &peak)
	require.Equal(t, big, reflect.ValueOf(m).Pointer(), "rebuilt at 25 entries of a peak of 100")
	require.Equal(t, 100, peak)
	delete(m, 75)
	m = shrunk(m, &peak)
	require.NotEqual(t, big, reflect.ValueOf(m).Pointer(), "not rebuilt at 24 entries of a peak of 100")
	require.Equal(t, 24, peak)
	require.Len(t, m, 24)
	for k := 76; k < 100; k++ {
		require.Equal(t, "x", m[k])
	}

	// A small map is left as it is.
	small := map[int]string{1: "x"}
	p := 10
	require.Equal(t, reflect.ValueOf(small).Pointer(), reflect.ValueOf(shrunk(small, &p)).Pointer())
}
