package main

import (
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/p2psock"
)

func TestChurnPlanNext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		plan     churnPlan
		crashMin float64
		crashMax float64
	}{
		{"range and half crash", churnPlan{alive: 10, minLife: 2 * time.Second, maxLife: 8 * time.Second, crash: 0.5}, 0.45, 0.55},
		{"fixed life, no crash", churnPlan{alive: 10, minLife: time.Second, maxLife: time.Second}, 0, 0},
		{"all crash", churnPlan{alive: 10, minLife: time.Second, maxLife: 3 * time.Second, crash: 1}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mrand.New(mrand.NewPCG(1, 2))
			crashes := 0
			lo, hi := tc.plan.maxLife, tc.plan.minLife
			const draws = 10000
			for range draws {
				life, crash := tc.plan.next(r)
				require.GreaterOrEqual(t, life, tc.plan.minLife)
				require.LessOrEqual(t, life, tc.plan.maxLife)
				lo, hi = min(lo, life), max(hi, life)
				if crash {
					crashes++
				}
			}
			share := float64(crashes) / draws
			require.GreaterOrEqual(t, share, tc.crashMin)
			require.LessOrEqual(t, share, tc.crashMax)
			// Uniform: the draws reach both ends of the range.
			span := tc.plan.maxLife - tc.plan.minLife
			require.LessOrEqual(t, lo-tc.plan.minLife, span/100)
			require.LessOrEqual(t, tc.plan.maxLife-hi, span/100)
		})
	}
}

func TestChurnPlanFirstStartSpread(t *testing.T) {
	p := churnPlan{alive: 4, minLife: 2 * time.Second, maxLife: 8 * time.Second}
	var got []time.Duration
	for i := range p.alive {
		got = append(got, p.firstStart(i))
	}
	require.Equal(t, []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}, got)
	require.Zero(t, churnPlan{}.firstStart(3))
}

func TestChurnExact(t *testing.T) {
	ids := make([]p2psock.ID, 3)
	for i := range ids {
		id, err := p2psock.NewIdentityWork(t.Context(), 0) // no work: only the IDs matter
		require.NoError(t, err)
		ids[i] = id.ID()
	}
	key := ids[0].Key() // ids[0] is the closest to its own key
	near, far := ids[0], ids[1]
	if key.Closer(ids[2].Key(), far.Key()) {
		far = ids[2]
	}
	for _, tc := range []struct {
		name                string
		to, b0, a0, b1, a1  p2psock.ID
		churner             bool
		wantStrict, wantBnd bool
	}{
		{"closest throughout", far, far, far, far, far, false, true, true},
		{"closest when acknowledged", far, near, near, far, far, false, true, true},
		{"a joining node was closer", far, far, near, far, near, false, false, true},
		{"delivered to a joining churner closer than the bound ones", near, far, near, far, near, true, true, true},
		{"missed the closest bound node", far, near, near, near, near, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strict, bound := exact(key, tc.to, tc.b0, tc.a0, tc.b1, tc.a1, tc.churner)
			require.Equal(t, tc.wantStrict, strict)
			require.Equal(t, tc.wantBnd, bound)
		})
	}
}
