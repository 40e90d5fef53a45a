//go:build race

package sim_test

import "time"

// raceEnabled reports whether the tests run under the race detector.
// TestVirtualNetworkRouting and TestVirtualNetworkChurn do not run under it:
// with Go 1.26.8 a synctest bubble of hundreds of nodes under the race
// detector crashed the runtime (SIGSEGV on an idle M of the bubble, no
// frame of this project's code); the overlay code they run is race-tested
// by the overlay package's own tests.
const raceEnabled = true

// The default sizes of the tests' networks.
const (
	defaultNodes         = 60
	defaultChurnNodes    = 40
	defaultChurners      = 12
	defaultChurnDuration = 20 * time.Second
)
