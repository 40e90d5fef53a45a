//go:build race

package sim_test

// defaultNodes is TestVirtualNetworkRouting's network: small under the race
// detector, which makes it about ten times slower.
const defaultNodes = 60
