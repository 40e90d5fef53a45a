package overlay

// Attach records v as the service named name that runs on this overlay, so
// that a tool given only the node finds it: package dht attaches its DHT
// when it starts, and the node's view page shows the records it holds. A
// later Attach of the same name replaces v. Names are chosen by code, not
// by the network, so their number is bounded by the program.
func (o *Overlay) Attach(name string, v any) { o.attached.Store(name, v) }

// Detach removes v from the name it was attached under, unless another
// service took that name since.
func (o *Overlay) Detach(name string, v any) { o.attached.CompareAndDelete(name, v) }

// Attached returns the service attached under name, or nil.
func (o *Overlay) Attached(name string) any {
	v, _ := o.attached.Load(name)
	return v
}
