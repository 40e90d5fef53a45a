//go:build !race

package sim_test

// defaultNodes is TestVirtualNetworkRouting's network.
const defaultNodes = 300
