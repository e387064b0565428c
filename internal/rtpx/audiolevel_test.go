package rtpx

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/rtp"
)

// audioPacket marshals an RTP packet carrying elems (ID to data) with pion,
// in the one-byte form unless twoByte is set.
func audioPacket(t testing.TB, twoByte bool, elems map[uint8][]byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, Timestamp: 960, SSRC: 7}, Payload: []byte{0xfc, 1, 2}}
	if twoByte {
		p.Header.Extension = true
		p.Header.ExtensionProfile = 0x1000
	}
	for id, data := range elems {
		if err := p.SetExtension(id, data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAudioLevelReadsLevelAndVoiceFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		twoByte bool
		data    []byte
		level   uint8
		voiced  bool
	}{
		{"one-byte voiced", false, []byte{0x80 | 30}, 30, true},
		{"one-byte silence", false, []byte{127}, 127, false},
		{"one-byte loudest", false, []byte{0x80}, 0, true},
		{"padded form", false, []byte{0x80 | 45, 0, 0, 0}, 45, true},
		{"two-byte", true, []byte{0x80 | 12}, 12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := audioPacket(t, tc.twoByte, map[uint8][]byte{3: {1, 2}, 1: tc.data})
			var h Header
			if err := Parse(pkt, &h); err != nil {
				t.Fatal(err)
			}
			level, voiced, err := AudioLevel(pkt, &h, 1)
			if err != nil || level != tc.level || voiced != tc.voiced {
				t.Fatalf("AudioLevel = %d %v %v, want %d %v", level, voiced, err, tc.level, tc.voiced)
			}
		})
	}
}

func TestAudioLevelRefusesMissingOrEmptyElement(t *testing.T) {
	var h Header
	pkt := audioPacket(t, false, map[uint8][]byte{3: {1}})
	if err := Parse(pkt, &h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AudioLevel(pkt, &h, 1); !errors.Is(err, ErrNoElement) {
		t.Fatalf("missing element: err %v, want ErrNoElement", err)
	}
	if _, _, err := AudioLevel(pkt, &h, 15); !errors.Is(err, ErrNoElement) {
		t.Fatalf("one-byte ID 15: err %v, want ErrNoElement", err)
	}
	plain := audioPacket(t, false, nil)
	if err := Parse(plain, &h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AudioLevel(plain, &h, 1); !errors.Is(err, ErrNoElement) {
		t.Fatalf("no extension: err %v, want ErrNoElement", err)
	}
	// A two-byte element of length zero, then padding.
	empty := []byte{0x90, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0x10, 0, 0, 1, 1, 0, 0, 0}
	if err := Parse(empty, &h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AudioLevel(empty, &h, 1); !errors.Is(err, ErrEmptyElement) {
		t.Fatalf("empty element: err %v, want ErrEmptyElement", err)
	}
}

// FuzzAudioLevel checks Element and AudioLevel against pion/rtp: for every
// packet both parsers accept with an RFC 8285 profile pion recognises,
// Element finds the same data as pion's GetExtension for the fuzzed ID, and
// AudioLevel the same level and V flag as pion's AudioLevelExtension (or
// refuses exactly when pion's Unmarshal does).
func FuzzAudioLevel(f *testing.F) {
	f.Add(audioPacket(f, false, map[uint8][]byte{1: {0x80 | 30}, 3: {9, 9}}), uint8(1))
	f.Add(audioPacket(f, true, map[uint8][]byte{1: {40}, 200: {1}}), uint8(1))
	f.Add(audioPacket(f, true, map[uint8][]byte{1: {40}, 200: {1}}), uint8(200))
	f.Add(audioPacket(f, false, map[uint8][]byte{2: {0x80 | 5, 0, 0, 0}}), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, id uint8) {
		var h Header
		err := Parse(b, &h)
		var ref rtp.Packet
		if err != nil || ref.Unmarshal(b) != nil {
			return
		}
		if ref.ExtensionProfile != ProfileOneByte && ref.ExtensionProfile != ProfileTwoByte || id == 0 ||
			ref.ExtensionProfile == ProfileOneByte && id >= 15 {
			if _, ok := Element(b, &h, id); ok && ref.ExtensionProfile != ProfileOneByte && h.ExtProfile&0xfff0 != ProfileTwoByte {
				t.Fatalf("element %d found in a block of profile %#x", id, h.ExtProfile)
			}
			return
		}
		data, ok := Element(b, &h, id)
		want := ref.GetExtension(id)
		if want == nil && ok && oddPadding(b[h.ExtStart:h.ExtEnd], h.ExtProfile) {
			// pion reads an ID-0 byte with a length as an element; RFC
			// 8285 leaves it undefined and Elements skips it as padding.
			return
		}
		if ok != (want != nil) || !bytes.Equal(data, want) {
			t.Fatalf("element %d: %x (%v), pion %x", id, data, ok, want)
		}
		level, voiced, err := AudioLevel(b, &h, id)
		if want == nil {
			if !errors.Is(err, ErrNoElement) {
				t.Fatalf("no element %d but AudioLevel err %v", id, err)
			}
			return
		}
		var ext rtp.AudioLevelExtension
		refErr := ext.Unmarshal(want)
		if (err != nil) != (refErr != nil) {
			t.Fatalf("element %x: err %v, pion %v", want, err, refErr)
		}
		if err == nil && (level != ext.Level || voiced != ext.Voice) {
			t.Fatalf("element %x: %d %v, pion %d %v", want, level, voiced, ext.Level, ext.Voice)
		}
	})
}

// oddPadding reports whether a one-byte block holds an ID-0 byte with a
// nonzero length, which pion and Elements read differently.
func oddPadding(b []byte, profile uint16) bool {
	if profile != ProfileOneByte {
		return false
	}
	for _, c := range b {
		if c>>4 == 0 && c != 0 {
			return true
		}
	}
	return false
}
