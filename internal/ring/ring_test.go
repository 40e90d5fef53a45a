package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRing: first in, first out, at most Max items, an array that grows as
// they wait (wrapping around) and is let go once they are all taken.
func TestRing(t *testing.T) {
	for _, max := range []int{1, 5, 8, 100, 512} {
		r := Ring[int]{Max: max}
		require.Zero(t, r.Cap())
		for round := range 2 {
			next := 0
			for i := range max {
				require.True(t, r.Push(i), "max %d round %d item %d", max, round, i)
				if i == 3 { // interleave: the ring wraps
					v, ok := r.Pop()
					require.True(t, ok)
					require.Equal(t, next, v)
					next++
				}
			}
			for r.Len() < max {
				require.True(t, r.Push(max))
			}
			require.False(t, r.Push(-1), "past Max")
			require.Equal(t, max, r.Cap())
			for r.Len() > 0 {
				v, ok := r.Pop()
				require.True(t, ok)
				require.Equal(t, min(next, max), v)
				next++
			}
			_, ok := r.Pop()
			require.False(t, ok)
			require.LessOrEqual(t, r.Cap(), MinSize, "the empty ring holds a large array")
		}
	}
}
