//go:build !race

package p2psock

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
