package callload

import (
	"errors"
	"testing"
)

// The participants are spread over URL and URLs round robin, publishers
// first; a URLs entry that is not an http(s) URL is refused.
func TestParticipantsSpreadOverServers(t *testing.T) {
	cfg := Config{URL: "http://127.0.0.1:1", URLs: []string{"http://127.0.0.1:2", "http://127.0.0.1:3"},
		TokenURL: "http://127.0.0.1:1/dev/token", Publishers: 2, Subscribers: 5, Prefix: "t"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"1", "2", "3", "1", "2", "3", "1"} // p0 p1 s0 s1 s2 s3 s4
	for i, p := range plan(cfg.withDefaults()) {
		if p.url != "http://127.0.0.1:"+want[i] {
			t.Errorf("%s joins through %s, want port %s", p.user, p.url, want[i])
		}
	}
	bad := cfg
	bad.URLs = []string{"127.0.0.1:2"}
	if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("URLs without a scheme: %v", err)
	}
}
