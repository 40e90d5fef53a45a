//go:build !linux

package nat

// segmentSize returns 0: quic-go asks for GSO batches on Linux only.
func segmentSize([]byte) int { return 0 }

// appendSegmentSize is never called off Linux.
func appendSegmentSize(b []byte, _ int) []byte { return b }
