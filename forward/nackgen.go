package forward

import (
	"time"

	"github.com/callcore/callcore/internal/rtcpx"
)

// Upstream NACKs: with TrackConfig.NACKUpstream, the track asks its
// publisher to resend what was lost on the way in (RFC 4585 generic NACK),
// so the shared cache can then repair every subscriber at once.
const (
	nackMax      = 64                    // missing packets tracked at once
	nackTries    = 3                     // requests per missing packet
	nackInterval = 20 * time.Millisecond // between two requests for one packet
)

// nackGen is the missing-packet list, owned by the exclusive section.
type nackGen struct {
	missing []missingPkt
	pairs   []rtcpx.NACK
	out     []byte // the NACK to send after the section, by the HandleRTP goroutine
}

type missingPkt struct {
	ext   uint64
	tries uint8
	at    int64
}

// lost notes the gap before ext, after the previous highest prev.
func (n *nackGen) lost(prev, ext uint64) {
	from := prev + 1
	if ext-from > nackMax {
		from = ext - nackMax
	}
	for e := from; e < ext; e++ {
		if len(n.missing) == nackMax {
			copy(n.missing, n.missing[1:])
			n.missing = n.missing[:nackMax-1]
		}
		n.missing = append(n.missing, missingPkt{ext: e})
	}
}

// due builds the NACK for the missing packets whose time has come, and
// forgets those that arrived, left the window or were asked for enough.
func (t *Track) nacksDue(now int64) []byte {
	n := &t.nack
	if len(n.missing) == 0 {
		return nil
	}
	n.pairs = n.pairs[:0]
	keep := n.missing[:0]
	for _, m := range n.missing {
		if t.in.has(m.ext) || m.ext+t.in.window <= t.in.high || m.tries >= nackTries {
			continue
		}
		if m.tries == 0 || now-m.at >= int64(nackInterval) {
			m.tries++
			m.at = now
			raw := uint16(m.ext - t.in.seqAdj)
			if k := len(n.pairs) - 1; k >= 0 && raw-n.pairs[k].PID <= 16 && raw != n.pairs[k].PID {
				n.pairs[k].BLP |= 1 << (raw - n.pairs[k].PID - 1)
			} else {
				n.pairs = append(n.pairs, rtcpx.NACK{PID: raw})
			}
		}
		keep = append(keep, m)
	}
	n.missing = keep
	if len(n.pairs) == 0 {
		return nil
	}
	t.cnt.nacksOut.Add(uint64(len(n.pairs)))
	n.out = rtcpx.AppendNACK(n.out[:0], t.cfg.FeedbackSSRC, t.ssrc, n.pairs)
	return n.out
}
