package forward

// cache is a track's retransmission cache: the last size packets, copied
// once on arrival into one preallocated block, shared by every subscriber.
// It is owned by whoever holds the track's exclusive section.
type cache struct {
	mask  uint64
	slots []slot
}

// slot holds one packet as it arrived, with what the core learnt of it.
type slot struct {
	ext     uint64 // extended sequence number + 1; 0 when empty
	extTS   uint64
	at      int64 // clock reading on arrival
	key     bool  // starts a key frame
	noMedia bool
	n       int
	buf     []byte
	picOff  uint16 // VP8 picture-ID offset it was sent with; 0 none
	sent    bool   // it was fanned out (not held back by the muter), in epoch
	epoch   uint32
}

func newCache(size, maxPacket int) *cache {
	block := make([]byte, size*maxPacket)
	c := &cache{mask: uint64(size - 1), slots: make([]slot, size)}
	for i := range c.slots {
		c.slots[i].buf = block[i*maxPacket : (i+1)*maxPacket : (i+1)*maxPacket]
	}
	return c
}

// put stores pkt unless its slot holds a newer packet.
func (c *cache) put(ext, extTS uint64, at int64, key, noMedia bool, pkt []byte) {
	s := &c.slots[ext&c.mask]
	if s.ext > ext+1 {
		return // a late packet older than the cache
	}
	s.ext, s.extTS, s.at, s.key, s.noMedia, s.picOff, s.sent = ext+1, extTS, at, key, noMedia, 0, false
	s.n = copy(s.buf, pkt)
}

// markSent records that packet ext was fanned out in the muter's source
// epoch: only such packets may be replayed to a joining subscriber.
func (c *cache) markSent(ext uint64, epoch uint32) {
	if s := c.get(ext); s != nil {
		s.sent, s.epoch = true, epoch
	}
}

// setPicOff records the picture-ID offset packet ext was sent with, so a
// retransmission carries the same ID.
func (c *cache) setPicOff(ext uint64, off uint16) {
	if s := c.get(ext); s != nil {
		s.picOff = off
	}
}

// get returns the cached packet ext, or nil.
func (c *cache) get(ext uint64) *slot {
	s := &c.slots[ext&c.mask]
	if s.ext != ext+1 {
		return nil
	}
	return s
}
