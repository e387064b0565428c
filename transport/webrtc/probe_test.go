package webrtc

import (
	"errors"
	"testing"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
)

// headerWriter keeps the last header and payload pion's writer was given.
type headerWriter struct {
	h rtp.Header
	p []byte
}

func (w *headerWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.h = h.Clone()
	w.p = append(w.p[:0], p...)
	return len(p), nil
}

func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }

// On pion's path a padding-only packet goes out with its padding in
// PaddingSize (pion writes it from there, not from the payload), so the
// marshalled packet is the one the core wrote; the next packet has none;
// padding longer than the payload is refused with forward.ErrMalformed.
func TestPionWriterCarriesPadding(t *testing.T) {
	hw := &headerWriter{}
	var ws pion.TrackLocalWriter = hw
	out := &rtpOut{batch: noFlush{}}
	out.ws.Store(&ws)
	hdr := []byte{0xa0, 97, 0, 9, 0, 0, 0, 2, 0, 0, 0, 4}
	pad := make([]byte, 200)
	pad[199] = 200
	if !paddingOnly(hdr, pad) {
		t.Fatal("a padding-only packet not recognised")
	}
	if err := out.WriteRTP(hdr, pad); err != nil {
		t.Fatal(err)
	}
	if !hw.h.Padding || hw.h.PaddingSize != 200 || len(hw.p) != 0 {
		t.Fatalf("pion given padding %v size %d and %d payload bytes", hw.h.Padding, hw.h.PaddingSize, len(hw.p))
	}
	buf := make([]byte, 1500)
	//lint:ignore SA1019 what pion's SRTP writer calls
	n, err := rtp.MarshalPacketTo(buf, &hw.h, hw.p)
	if err != nil || n != 12+200 || buf[n-1] != 200 || buf[0]&0x20 == 0 {
		t.Fatalf("marshalled %d bytes (%v), last %d", n, err, buf[n-1])
	}
	media := append([]byte{0x80}, hdr[1:]...)
	if err := out.WriteRTP(media, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if hw.h.Padding || hw.h.PaddingSize != 0 || len(hw.p) != 100 {
		t.Fatalf("media after padding: padding %v size %d, %d bytes", hw.h.Padding, hw.h.PaddingSize, len(hw.p))
	}
	bad := make([]byte, 10)
	bad[9] = 50
	if err := out.WriteRTP(hdr, bad); !errors.Is(err, forward.ErrMalformed) {
		t.Fatalf("padding longer than the payload: %v", err)
	}
	if paddingOnly(media, make([]byte, 100)) {
		t.Fatal("media taken for padding")
	}
}
