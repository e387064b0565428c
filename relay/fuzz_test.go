package relay

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
)

// FuzzAuth: the relay's AuthHandler against a reference model of the TURN
// REST convention. A username is accepted exactly when it is
// "<decimal expiry>:<non-empty user id>" with the expiry not past; then
// the user id is what follows the first colon and the key is the
// long-term key of the username's HMAC password. Every refusal is counted
// once, as expired or malformed.
func FuzzAuth(f *testing.F) {
	now := time.Now().Unix()
	for _, s := range []string{
		strconv.FormatInt(now+3600, 10) + ":alice",
		strconv.FormatInt(now-10, 10) + ":alice",
		"alice", ":alice", "123:", "x:y", "99999999999999999999:a", "-1:a", "+4102444800:a:b",
		strconv.FormatInt(now+60, 10) + ":a:b:c",
	} {
		f.Add(s, "callcore")
	}
	s := &Server{cfg: Config{Secret: []byte("fuzz-secret-0123456789")}}
	f.Fuzz(func(t *testing.T, username, realm string) {
		before := s.expired.Load() + s.malformed.Load()
		user, key, ok := s.auth(&pionturn.RequestAttributes{Username: username, Realm: realm})
		at := time.Now().Unix()

		exp, id, found := strings.Cut(username, ":")
		t64, err := strconv.ParseInt(exp, 10, 64)
		wantOK := found && err == nil && id != "" && t64 >= at
		if ok != wantOK && !(ok && t64 == at-1) { // the second may turn between the two clocks
			t.Fatalf("%q: accepted %v, model %v", username, ok, wantOK)
		}
		refused := s.expired.Load() + s.malformed.Load() - before
		if ok {
			want := pionturn.GenerateAuthKey(username, realm, mac(s.cfg.Secret, username))
			if user != id || !bytes.Equal(key, want) || refused != 0 {
				t.Fatalf("%q: user %q key %x refusals %d, want %q %x 0", username, user, key, refused, id, want)
			}
		} else if refused != 1 || user != "" || key != nil {
			t.Fatalf("%q: refused with user %q key %x, counted %d times", username, user, key, refused)
		}
	})
}
