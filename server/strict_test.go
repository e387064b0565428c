package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// lenientDecode is the reference for decodeStrict: encoding/json with
// unknown fields refused and one value only, plus the rules encoding/json
// does not have, checked on its token stream: every object's names are
// distinct and spelt exactly as the protocol spells them (encoding/json
// matches names case-insensitively), and the text is valid UTF-8.
func lenientDecode(data []byte) (request, bool) {
	var req request
	if !utf8.Valid(data) || !json.Valid(data) || !pairedSurrogates(data) || !distinctNames(data) {
		return req, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return req, false
	}
	for name := range top {
		if name != "id" && name != "type" && name != "data" {
			return req, false
		}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var v struct {
		ID   uint64          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if d.Decode(&v) != nil {
		return req, false
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return req, false
	}
	req.ID, req.Type, req.Data = v.ID, v.Type, []byte(v.Data)
	return req, true
}

// pairedSurrogates reports whether every \u escape of a UTF-16 surrogate
// in data's strings is one half of a pair (encoding/json turns a lone one
// into U+FFFD). data is valid JSON.
func pairedSurrogates(data []byte) bool {
	hex := func(b []byte) rune {
		var r rune
		for _, c := range b {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			default:
				r = r<<4 | rune(c-'A'+10)
			}
		}
		return r
	}
	in := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			in = !in
		case in && c == '\\':
			if data[i+1] != 'u' {
				i++ // a one-character escape
				continue
			}
			r := hex(data[i+2 : i+6])
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false // a low half first
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return false
				}
				if lo := hex(data[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
					return false
				}
				i += 6
			}
		}
	}
	return true
}

// distinctNames reports whether no object in data names a member twice.
func distinctNames(data []byte) bool {
	d := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object  bool
		names   map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return errors.Is(err, io.EOF)
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if name, ok := tok.(string); ok {
				if top.names[name] {
					return false
				}
				top.names[name] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.wantKey = true
			}
			stack = append(stack, &frame{object: true, names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			if top != nil && top.object {
				top.wantKey = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.object {
			top.wantKey = true // a value: the next string is a name
		}
	}
}

// FuzzDecodeStrict: decodeStrict accepts a message exactly when the
// reference (lenientDecode: encoding/json plus distinct, exactly spelt
// names and valid UTF-8) does, and then decodes the same id, type and
// data.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"type":"getUsers"}`,
		`{"id":1,"type":"getUsers"}}`,
		`{"id":1,"type":"getUsers"}]`,
		`{"id":1,"type":"a","type":"b"}`,
		`{"id":1,"Type":"a"}`,
		`{"id":1,"type":"x","data":{"a":1,"a":2}}`,
		`{"id":1,"type":"x","data":[{"a":1},{"a":2}]}`,
		"{\"id\":1,\"type\":\"\xff\"}",
		`{"id":1,"type":"x","data":{"names":["cam"],"state":true}}`,
		`{"id":18446744073709551615,"type":"x"}`,
		`{"id":1e2,"type":"x"}`, `{"id":-0,"type":"x"}`, `{"id":1,"type":"\u00e9\ud800"}`,
		` {"id":1} `, `[]`, `null`, `{"id":1,"type":"x","extra":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(bytes.TrimSpace(data)) == 0 {
			return // decodeStrict reads nothing as {} on purpose
		}
		var got request
		err := decodeStrict(data, &got)
		want, ok := lenientDecode(data)
		if (err == nil) != ok {
			t.Fatalf("%q: decodeStrict err=%v, reference accepts=%v", data, err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("%q: refusal does not wrap ErrInvalidMessage: %v", data, err)
			}
			return
		}
		if got.ID != want.ID || got.Type != want.Type || !bytes.Equal(bytes.TrimSpace(got.Data), bytes.TrimSpace(want.Data)) {
			t.Fatalf("%q: decoded %+v, reference %+v", data, got, want)
		}
	})
}

// TestQuickID: the id of a refused message is found without decoding it,
// at the top level only.
func TestQuickID(t *testing.T) {
	for msg, want := range map[string]uint64{
		`{"id":7,"type":"x"}`:                               7,
		`{"data":{"users":[{"id":5}]},"id": 12,"type":"x"}`: 12,
		`{"type":"x\"id\":3","id":4}`:                       4,
		`{"data":{"id":9},"type":"x"}`:                      0,
		`{"id":"5"}`:                                        0,
		`{"id":-1}`:                                         0,
		`not json`:                                          0,
		`{"id":12345678901234567890}`:                       0,
		`{"data":[{"a":"]"}],"id":8}`:                       8,
		`{"data":"\\","id":6}`:                              6,
	} {
		if got := quickID([]byte(msg)); got != want {
			t.Errorf("quickID(%s) = %d, want %d", msg, got, want)
		}
	}
}
