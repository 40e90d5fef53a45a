//go:build race

package sim_test

import "time"

// The default sizes of the tests' networks: small under the race detector,
// which makes them about ten times slower.
const (
	defaultNodes         = 60
	defaultChurnNodes    = 40
	defaultChurners      = 12
	defaultChurnDuration = 20 * time.Second
)
