package sim

import (
	"math"
	"time"
)

// RIPE is a latency model measured on the Internet: every host is placed in
// a country, drawn by the country's share of RIPE Atlas's pings (a fixed
// draw per host number), and the RTT between two hosts is the mean RTT of
// RIPE Atlas's pings between their countries, times a factor between 0.75
// and 1.25 fixed per pair of hosts (two hosts of the same country are not
// all the same distance apart). The table holds the 48 countries with the
// most pings, 93 % of them: the United States 25 %, Germany 11 %, the
// Netherlands 6 %, France 5 %, ..., Saudi Arabia 0.35 %. Over random pairs
// of hosts its RTTs are 39 / 110 / 212 / 322 ms at the 10th / 50th / 90th /
// 99th percentile (TestRIPELatency).
//
// Origin: the pings of RIPE Atlas's daily dumps of 2025-03-29..31 and
// 2025-04-18..19 (2.5 billion of them, published by the RIPE NCC for anyone
// to use, with acknowledgement), summarised per pair of countries in
// data/internet/country_rtt_stat.csv.gz of
// github.com/input-output-hk/ouroboros-leios (Apache-2.0); the table
// (ripe_table.go) is written from that file by go run ./internal/cmd/simrtt.
// Means of pings include their long tails: a pair's mean is above its
// median.
func RIPE(a, b int) time.Duration {
	if a == b {
		return 100 * time.Microsecond
	}
	ca, cb := Country(a), Country(b)
	if ca > cb {
		ca, cb = cb, ca
	}
	ms := float64(ripeRTT[cb*(cb+1)/2+ca]) / 10
	lo, hi := uint64(min(a, b)), uint64(max(a, b))
	f := 0.75 + 0.5*unit(mix(lo<<32^hi^0xa0761d6478bd642f))
	return time.Duration(math.Max(ms*f, 0.2) * float64(time.Millisecond))
}

// Country is the index of host i's country in the RIPE model's table.
func Country(i int) int {
	u := uint32(mix(uint64(i)^0xe7037ed1a0b428db) % 1e6)
	for c, w := range ripeWeights {
		if u < w {
			return c
		}
		u -= w
	}
	return 0 // the parts per million of the table add up to a little less than 1e6: the rest is the first country's
}

// CountryName is the ISO 3166 code of country c of the RIPE model's table.
func CountryName(c int) string { return ripeCountries[c] }

// mix is SplitMix64's finaliser: a fixed pseudo-random function of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// unit maps x to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }
