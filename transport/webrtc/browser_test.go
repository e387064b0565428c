package webrtc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pion "github.com/pion/webrtc/v4"

	"github.com/callcore/callcore/forward"
	"github.com/callcore/callcore/internal/browser"
	"github.com/callcore/callcore/web"
)

// TestChromiumRenegotiation runs sequences of offers from both sides
// between a server peer and Chromium: the server adds subscriptions and
// offers, Chromium adds sending transceivers and offers. One BUNDLE group
// must map each RTP header-extension id to one URI, and each side numbers
// the extensions of a new section itself: every offer and answer must be
// accepted on both sides.
func TestChromiumRenegotiation(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	mux.Handle("/sdk/", http.FileServerFS(web.FS))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b := browser.Start(t)
	tab := b.NewUser(t, "bob")
	tab.Navigate(t, srv.URL+"/blank.html")
	engine := newTestEngine(t, Config{})
	defer engine.Close()

	for _, seq := range [][]string{
		{"S:video", "C:audio", "S:audio", "C:video"},
		{"S:video", "C:audio+video", "S:audio"},
		{"S:audio", "C:video", "S:video", "C:audio"},
		{"S:audio+video", "C:audio+video"},
		{"C:audio", "S:video", "C:video", "S:audio"},
		{"C:video", "S:audio", "C:audio", "S:video"},
		{"C:audio+video", "S:audio+video", "C:audio+video"},
		{"R:video+audio", "S:video+audio", "C:"},
		{"R:audio+video", "S:video+audio", "C:"},
	} {
		t.Run(strings.Join(seq, ","), func(t *testing.T) {
			renegotiate(t, tab, engine, seq)
		})
	}
}

func renegotiate(t *testing.T, tab *browser.Tab, engine *Engine, steps []string) {
	p, err := NewPeer(PeerConfig{Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// window.send(kinds) adds a sending transceiver per kind, with the fake
	// camera and microphone.
	tab.Eval(t, `(() => {
		if (window.pc) pc.close();
		window.pc = new RTCPeerConnection();
		window.send = async (kinds) => {
			if (!kinds.some((k) => k)) return;
			const s = await navigator.mediaDevices.getUserMedia({audio: kinds.includes('audio'), video: kinds.includes('video')});
			for (const tr of s.getTracks()) pc.addTransceiver(tr, {direction: 'sendonly', streams: [s]});
		};
		return true;
	})()`, nil)
	defer tab.Eval(t, `(() => { pc.close(); return true })()`, nil)
	var sdps []string
	for i, step := range steps {
		side, kinds, _ := strings.Cut(step, ":")
		switch side {
		case "S":
			for _, kind := range strings.Split(kinds, "+") {
				c := forward.TrackConfig{Kind: forward.Audio, MimeType: pion.MimeTypeOpus, ClockRate: 48000, PayloadType: 111, SSRC: uint32(10 + i)}
				if kind == "video" {
					c = forward.TrackConfig{Kind: forward.Video, MimeType: pion.MimeTypeVP8, ClockRate: 90000, PayloadType: 96, SSRC: uint32(20 + i)}
				}
				track, err := forward.NewTrack(c)
				if err != nil {
					t.Fatal(err)
				}
				defer track.Close()
				if _, err := p.Subscribe(track, PublishInfo{TrackID: fmt.Sprintf("t%d%s", i, kind), StreamID: "alice"}); err != nil {
					t.Fatal(err)
				}
			}
			offer, err := p.Offer()
			if err != nil {
				t.Fatal(err)
			}
			sdps = append(sdps, "server offer:\n"+offer)
			var answer string
			if err := tab.EvalErr(`(async (offer) => {
				await pc.setRemoteDescription({type: 'offer', sdp: offer});
				await pc.setLocalDescription(await pc.createAnswer());
				return pc.localDescription.sdp;
			})(`+jsString(offer)+`)`, &answer); err != nil {
				t.Fatalf("step %s: Chromium refused the server's offer: %v\n%s", step, err, strings.Join(sdps, "\n"))
			}
			sdps = append(sdps, "Chromium answer:\n"+answer)
			if err := p.SetAnswer(answer); err != nil {
				t.Fatalf("step %s: the server refused Chromium's answer: %v\n%s", step, err, strings.Join(sdps, "\n"))
			}
		case "R": // Chromium offers, and rolls its offer back (as a polite peer in glare)
			if err := tab.EvalErr(`(async (kinds) => {
				await send(kinds);
				await pc.setLocalDescription(await pc.createOffer());
				await pc.setLocalDescription({type: 'rollback'});
				return true;
			})(`+jsString(kinds)+`.split('+'))`, nil); err != nil {
				t.Fatalf("step %s: %v", step, err)
			}
		case "C":
			// Chromium's offer, made to agree with the ids negotiated so far
			// as the SDK does (harmonizeExtmap in web/sdk/media.js); whether
			// Chromium would have taken its raw offer is logged.
			var out struct {
				Offer string
				Raw   string // Chromium's error for its raw offer, if any
			}
			if err := tab.EvalErr(`(async (kinds) => {
				const {harmonizeExtmap} = await import('/sdk/media.js');
				await send(kinds);
				const offer = await pc.createOffer();
				let raw = '';
				try {
					await pc.setLocalDescription(offer);
					await pc.setLocalDescription({type: 'rollback'});
				} catch (e) {
					raw = String(e);
				}
				const remote = pc.currentRemoteDescription;
				const sdp = remote ? harmonizeExtmap(offer.sdp, remote.sdp) : offer.sdp;
				await pc.setLocalDescription({type: 'offer', sdp});
				return {offer: pc.localDescription.sdp, raw};
			})(`+jsString(kinds)+`.split('+'))`, &out); err != nil {
				t.Fatalf("step %s: Chromium refused its own offer: %v\n%s", step, err, strings.Join(sdps, "\n"))
			}
			if out.Raw != "" {
				t.Logf("step %s: Chromium refuses its unharmonized offer: %s", step, out.Raw)
			}
			offer := out.Offer
			sdps = append(sdps, "Chromium offer:\n"+offer)
			answer, err := p.Answer(offer)
			if err != nil {
				t.Fatalf("step %s: the server refused Chromium's offer: %v\n%s", step, err, strings.Join(sdps, "\n"))
			}
			sdps = append(sdps, "server answer:\n"+answer)
			if err := tab.EvalErr(`pc.setRemoteDescription({type: 'answer', sdp: `+jsString(answer)+`}).then(() => true)`, nil); err != nil {
				t.Fatalf("step %s: Chromium refused the server's answer: %v\n%s", step, err, strings.Join(sdps, "\n"))
			}
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
