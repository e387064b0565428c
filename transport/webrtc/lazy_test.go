package webrtc

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// rtcpLog is an RTCP writer that keeps what it is given.
type rtcpLog struct {
	mu   sync.Mutex
	pkts []rtcp.Packet
}

func (l *rtcpLog) Write(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
	l.mu.Lock()
	l.pkts = append(l.pkts, pkts...)
	l.mu.Unlock()
	return 0, nil
}

func (l *rtcpLog) nacked() []uint16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var seqs []uint16
	for _, p := range l.pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok {
			for _, pair := range n.Nacks {
				seqs = append(seqs, pair.PacketList()...)
			}
		}
	}
	return seqs
}

// In a synctest bubble (fake time): pion's NACK generator, receiver-report
// and TWCC interceptors, wrapped as mediaEngine wraps them, start no
// goroutine while their peer receives nothing, for 10 s; at the first
// remote stream each starts its loop, and the NACK generator asks for a
// lost packet within its 100 ms interval.
func TestInterceptorsStartOnlyWhenThePeerReceives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			t.Fatal(err)
		}
		rr, err := report.NewReceiverInterceptor()
		if err != nil {
			t.Fatal(err)
		}
		tw, err := twcc.NewSenderInterceptor()
		if err != nil {
			t.Fatal(err)
		}
		var log rtcpLog
		var ics []interceptor.Interceptor
		base := interceptorLoops()
		for _, f := range []interceptor.Factory{gen, rr, tw} {
			ic, err := onReceiveFactory{f}.NewInterceptor("")
			if err != nil {
				t.Fatal(err)
			}
			if w := ic.BindRTCPWriter(&log); w != interceptor.RTCPWriter(&log) {
				t.Fatal("BindRTCPWriter changed the writer")
			}
			ics = append(ics, ic)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := interceptorLoops(); n != base {
			t.Fatalf("no stream for 10 s: %d interceptor goroutines, want %d", n, base)
		}

		info := &interceptor.StreamInfo{SSRC: 0x1234, MimeType: pion.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback:        []interceptor.RTCPFeedback{{Type: "nack"}},
			RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", ID: 5}}}
		var queue [][]byte
		for _, seq := range []uint16{1, 3} { // 2 is lost
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: info.SSRC}, Payload: []byte{0x10, 0}}
			if err := p.SetExtension(5, []byte{0, byte(seq)}); err != nil {
				t.Fatal(err)
			}
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			queue = append(queue, b)
		}
		src := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
			n := copy(b, queue[0])
			queue = queue[1:]
			return n, a, nil
		})
		var reader interceptor.RTPReader = src
		for _, ic := range ics {
			reader = ic.BindRemoteStream(info, reader)
		}
		for range 2 {
			if _, _, err := reader.Read(make([]byte, 1500), nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if n := interceptorLoops(); n != base+3 {
			t.Fatalf("receiving: %d goroutines, want %d (one loop each)", n, base+3)
		}
		time.Sleep(250 * time.Millisecond)
		synctest.Wait()
		if got := log.nacked(); len(got) == 0 || got[0] != 2 {
			t.Fatalf("after 250 ms: NACKed %v, want packet 2", got)
		}
		for _, ic := range ics {
			if err := ic.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// The receiver-report interceptor, wrapped as mediaEngine wraps it, reads
// no RTCP until its peer receives a stream: a packet it cannot parse
// reaches the reader's caller (where callcore counts it) instead of
// being refused by pion's parser, which runs on every packet once the
// peer receives.
func TestReceiverReportsReadNoRTCPUntilThePeerReceives(t *testing.T) {
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	ic, err := onReceiveFactory{rr}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	var log rtcpLog
	ic.BindRTCPWriter(&log)
	junk := []byte{0x81, 205, 0, 9, 1, 2} // a header promising 40 bytes, 6 given
	reader := ic.BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, junk), a, nil
	}))
	buf := make([]byte, 1500)
	if n, _, err := reader.Read(buf, nil); err != nil || n != len(junk) {
		t.Fatalf("before the peer receives: read %d, %v; want the %d bytes unparsed", n, err, len(junk))
	}
	info := &interceptor.StreamInfo{SSRC: 0x1234, MimeType: pion.MimeTypeVP8, ClockRate: 90000}
	ic.BindRemoteStream(info, interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return 0, a, nil
	}))
	if _, _, err := reader.Read(buf, nil); err == nil {
		t.Fatal("once the peer receives, the interceptor's parser did not see the packet")
	}
}

// A peer runs its sender-report timer only while it has subscriptions:
// none at creation, armed by the first subscription, and let go at the
// first run after the last one closed.
func TestSenderReportTimerRunsOnlyWithSubscriptions(t *testing.T) {
	engine := newTestEngine(t, Config{})
	defer engine.Close()
	p, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	armed := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.reportsArmed
	}
	if armed() {
		t.Fatal("a peer with no subscription has its sender-report timer armed")
	}
	s, err := p.Subscribe(newTrack(t, forward.Video, pion.MimeTypeVP8, 90000, 96), PublishInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !armed() {
		t.Fatal("a peer with a subscription has no sender-report timer")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the timer let go after the last subscription", func() bool { return !armed() })
}

// interceptorLoops counts the goroutines of a synctest bubble running in
// pion's interceptors: by what they run and where, not
// runtime.NumGoroutine, which other tests' goroutines still ending would
// throw off.
func interceptorLoops() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			count := 0
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "synctest bubble") && strings.Contains(g, "github.com/pion/interceptor/pkg/") {
					count++
				}
			}
			return count
		}
		buf = make([]byte, 2*len(buf))
	}
}
