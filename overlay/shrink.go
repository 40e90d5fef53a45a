package overlay

// A Go map never gives its memory back: one that held a hundred entries
// for a moment (the pings of a join, sent to every contact at once) keeps
// the room for a hundred when it holds three. The maps a node keeps for
// its whole life and that swell in bursts are rebuilt when they shrink.

// shrinkMin is the peak below which a map is not rebuilt: a rebuild would
// save less than it costs.
const shrinkMin = 16

// addCount adds n to m[k], deleting the entry when it falls to zero or
// below, and returns m, or a copy of m sized for what it holds once it
// holds less than a quarter of its peak (*peak, the most entries it held
// since it was last rebuilt).
func addCount[K comparable](m map[K]int, peak *int, k K, n int) map[K]int {
	if m[k] += n; m[k] > 0 {
		*peak = max(*peak, len(m))
		return m
	}
	delete(m, k)
	return shrunk(m, peak)
}

// shrunk returns m, or a copy of m sized for what it holds once it holds
// less than a quarter of its peak (*peak, the most entries it held since it
// was last rebuilt: the caller raises it as it adds, shrunk as it looks).
// It is for maps whose entries expire in a sweep: call it after the sweep.
func shrunk[K comparable, V any](m map[K]V, peak *int) map[K]V {
	*peak = max(*peak, len(m))
	if *peak < shrinkMin || len(m) >= *peak/4 {
		return m
	}
	*peak = len(m)
	small := make(map[K]V, len(m)) // not maps.Clone, which keeps m's room
	for k, v := range m {
		small[k] = v
	}
	return small
}

// made returns *m, which it makes first if it is nil. A node has a dozen
// maps of things in flight that stay empty until it does something (an
// empty map is a 48-byte allocation each, and the small allocations a node
// keeps for its life leave their spans part empty): they are made at their
// first entry. Reading and deleting from a nil map need no care.
func made[K comparable, V any](m *map[K]V) map[K]V {
	if *m == nil {
		*m = make(map[K]V)
	}
	return *m
}
