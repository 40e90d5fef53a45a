//go:build !race

package sim_test

import "time"

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false

// The default sizes of the tests' networks.
const (
	defaultNodes         = 300
	defaultChurnNodes    = 100
	defaultChurners      = 50
	defaultChurnDuration = time.Minute
)
