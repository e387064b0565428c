package rtp_test

import (
	"hash/crc32"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcore/callcore/transport/rtp"
)

// drain counts the packets an Ingest receives and checks each payload's
// checksum.
type drain struct {
	want    uint32
	got     atomic.Int64
	corrupt atomic.Int64
}

func (d *drain) HandleRTP(b []byte) error {
	if crc32.ChecksumIEEE(b[12:]) != d.want {
		d.corrupt.Add(1)
	}
	d.got.Add(1)
	return nil
}

// BenchmarkEgress sends 1200-byte RTP packets through an Egress to a
// loopback socket read by an Ingest's goroutine: pkts/s is what WriteRTP
// sends, recv-pkts/s what arrived whole while the benchmark ran.
func BenchmarkEgress(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchEgress(b, nil) })
	b.Run("SRTP-GCM", func(b *testing.B) { benchEgress(b, keys(b, rtp.ProfileAEADAES128GCM)) })
	b.Run("SRTP-AES_CM", func(b *testing.B) { benchEgress(b, keys(b, rtp.ProfileAESCM128SHA1_80)) })
}

func benchEgress(b *testing.B, k *rtp.Keys) {
	payload := make([]byte, 1200-12)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	d := &drain{want: crc32.ChecksumIEEE(payload)}
	in := newIngest(b, rtp.IngestConfig{RTP: d, SRTP: k, ReadBuffer: 4 << 20})
	e := newEgress(b, rtp.EgressConfig{Remote: in.Addr(), Addr: "127.0.0.1:0", SRTP: k})
	hdr := rtpPacket(0, 5, nil)[:12]
	warmUp(b, d, []interface{ WriteRTP(h, p []byte) error }{e}, nil, hdr, payload)
	b.SetBytes(1200)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= b.N; i++ {
		hdr[2], hdr[3] = byte(i>>8), byte(i)
		_ = e.WriteRTP(hdr, payload) // a full buffer drops and counts
	}
	elapsed := time.Since(start)
	b.StopTimer()
	settle(d, b.N)
	if c := d.corrupt.Load(); c != 0 {
		b.Fatalf("%d packets arrived corrupt", c)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(d.got.Load())/elapsed.Seconds(), "recv-pkts/s")
	if s := e.Stats(); s.Dropped() != 0 {
		b.Logf("egress dropped %d of %d", s.Dropped(), b.N)
	}
}

// BenchmarkFanout sends each 1200-byte packet to 10 receivers (10
// Ingests, so both variants pay the same to receive): through 10 Egresses,
// one sendto each, or through 10 Targets of one Sender, one sendmmsg per
// fan-out. pkts/s counts deliveries sent.
func BenchmarkFanout(b *testing.B) {
	for _, batched := range []bool{false, true} {
		for _, srtp := range []bool{false, true} {
			name := map[bool]string{false: "egress", true: "batched"}[batched] + map[bool]string{false: "/plain", true: "/SRTP-GCM"}[srtp]
			b.Run(name+"/subs=10", func(b *testing.B) {
				var k *rtp.Keys
				if srtp {
					k = keys(b, rtp.ProfileAEADAES128GCM)
				}
				benchFanout(b, 10, batched, k)
			})
		}
	}
}

func benchFanout(b *testing.B, subs int, batched bool, k *rtp.Keys) {
	payload := make([]byte, 1200-12)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	d := &drain{want: crc32.ChecksumIEEE(payload)}
	var writers []interface{ WriteRTP(h, p []byte) error }
	var s *rtp.Sender
	if batched {
		s = newSender(b, rtp.SenderConfig{Addr: "127.0.0.1:0"})
	}
	for range subs {
		in := newIngest(b, rtp.IngestConfig{RTP: d, SRTP: k, ReadBuffer: 4 << 20})
		if batched {
			writers = append(writers, newTarget(b, s, rtp.TargetConfig{Remote: in.Addr(), SRTP: k}))
		} else {
			writers = append(writers, newEgress(b, rtp.EgressConfig{Remote: in.Addr(), Addr: "127.0.0.1:0", SRTP: k}))
		}
	}
	hdr := rtpPacket(0, 5, nil)[:12]
	warmUp(b, d, writers, s, hdr, payload)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= b.N; i++ {
		hdr[2], hdr[3] = byte(i>>8), byte(i)
		for _, w := range writers {
			_ = w.WriteRTP(hdr, payload)
		}
		if s != nil {
			_ = s.Flush()
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	settle(d, b.N*subs)
	if c := d.corrupt.Load(); c != 0 {
		b.Fatalf("%d packets arrived corrupt", c)
	}
	b.ReportMetric(float64(b.N*subs)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(d.got.Load())/elapsed.Seconds(), "recv-pkts/s")
}

// warmUp sends packet 0 through every writer and waits for them, so that
// per-stream state (SRTP contexts' SSRC entries) exists before the timer
// starts; then it resets the drain's count.
func warmUp(b *testing.B, d *drain, writers []interface{ WriteRTP(h, p []byte) error }, s *rtp.Sender, hdr, payload []byte) {
	for _, w := range writers {
		if err := w.WriteRTP(hdr, payload); err != nil {
			b.Fatal(err)
		}
	}
	if s != nil {
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, "the warm-up packets", func() bool { return d.got.Load() == int64(len(writers)) })
	d.got.Store(0)
}

// settle lets the readers catch up with what is queued: it returns when
// want packets arrived or arrivals stop.
func settle(d *drain, want int) {
	last := int64(-1)
	for n := d.got.Load(); n != last && n < int64(want); n = d.got.Load() {
		last = n
		time.Sleep(10 * time.Millisecond) // polling until arrivals stop
	}
}
