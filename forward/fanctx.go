package forward

import (
	"github.com/callcore/callcore/internal/rtpx"
)

// fanCtx is the scratch of one goroutine that delivers packets: the header
// of the current packet for each extension profile, and buffers to rebuild
// cached packets for replays and retransmissions.
type fanCtx struct {
	maxPacket int
	hdrs      [][]byte // per profile, patched per subscriber
	lens      []int
	rtxHdr    []byte
	rtxBody   []byte
	layHdr    []byte // a layered subscriber's header with its own VP8 descriptor
	parsed    rtpx.Header
}

func newFanCtx(maxPacket int) *fanCtx {
	return &fanCtx{
		maxPacket: maxPacket,
		rtxHdr:    make([]byte, maxPacket+8),
		rtxBody:   make([]byte, maxPacket+2),
		layHdr:    make([]byte, maxPacket+8),
	}
}

// fanout delivers the packet to the subscribers set.entries[lo:hi].
func (fc *fanCtx) fanout(t *Track, set *subSet, lo, hi int, pkt []byte, p *pktInfo) {
	for len(fc.hdrs) < len(set.profiles) { // grows only when a snapshot has more profiles
		fc.hdrs = append(fc.hdrs, make([]byte, fc.maxPacket+8))
		fc.lens = append(fc.lens, 0)
	}
	for i, prof := range set.profiles {
		fc.lens[i] = buildHeader(fc.hdrs[i], pkt, p.hdr, &prof.remap)
		fc.lens[i] += copy(fc.hdrs[i][fc.lens[i]:], p.desc)
	}
	for i := lo; i < hi; i++ {
		e := &set.entries[i]
		e.sub.deliver(t, fc, e.prof, p)
	}
}

// buildHeader writes into dst the header a profile's subscribers get,
// before their own SSRC, payload type, sequence number and timestamp are
// patched in, and returns its length.
func buildHeader(dst, pkt []byte, h *rtpx.Header, remap *[256]uint8) int {
	fixed := 12 + 4*int(h.CSRCCount)
	copy(dst, pkt[:fixed])
	if h.ExtProfile == 0 {
		return fixed
	}
	n := rtpx.RewriteExtensions(dst[fixed:], pkt[h.ExtStart:h.ExtEnd], h.ExtProfile, remap)
	if n == 0 {
		dst[0] &^= 0x10
	}
	return fixed + n
}
