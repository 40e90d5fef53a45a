package overlay

// handlerTable maps a service byte to its handler. A node registers a
// handful of services, so a short list, searched in order, stands in for
// an array of 256 (2 KiB per table, three tables per node). Guarded by
// Overlay.mu.
type handlerTable[H any] struct {
	entries []handlerEntry[H]
}

type handlerEntry[H any] struct {
	service byte
	h       H
}

// get returns the handler of service, or the zero H (nil).
func (t *handlerTable[H]) get(service byte) H {
	for _, e := range t.entries {
		if e.service == service {
			return e.h
		}
	}
	var zero H
	return zero
}

// set registers h for service, in place of any before it.
func (t *handlerTable[H]) set(service byte, h H) {
	for i, e := range t.entries {
		if e.service == service {
			t.entries[i].h = h
			return
		}
	}
	t.entries = append(t.entries, handlerEntry[H]{service, h})
}
