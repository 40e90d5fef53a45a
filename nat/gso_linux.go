package nat

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentSize returns the segment size of the UDP_SEGMENT control message
// in oob, or 0 if there is none.
func segmentSize(oob []byte) int {
	for len(oob) > 0 {
		h, body, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_SEGMENT && len(body) >= 2 {
			return int(binary.NativeEndian.Uint16(body))
		}
		oob = rest
	}
	return 0
}

// appendSegmentSize appends a UDP_SEGMENT control message for segments of
// size to b.
func appendSegmentSize(b []byte, size int) []byte {
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(2))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[start+unix.CmsgSpace(0):], uint16(size))
	return b
}
