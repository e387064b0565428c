package web

import (
	"context"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEmbedded checks that every file the server serves is embedded and
// not empty.
func TestEmbedded(t *testing.T) {
	for _, name := range []string{
		"index.html", "app.js", "style.css",
		"sdk/calls.js", "sdk/calls.d.ts", "sdk/signal.js", "sdk/connection.js", "sdk/stay.js", "sdk/state.js",
		"sdk/media.js", "sdk/icepath.js", "sdk/follow.js", "sdk/package.json",
	} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

// TestSDKSurface checks that calls.js defines each method of the call API's (docs/api.md)
// Calls object and exports Calls, and that the typings declare them too.
func TestSDKSurface(t *testing.T) {
	js, err := fs.ReadFile(FS, "sdk/calls.js")
	if err != nil {
		t.Fatal(err)
	}
	dts, err := fs.ReadFile(FS, "sdk/calls.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	src, types := string(js), string(dts)
	methods := []string{
		"create", "join", "leave", "delete", "addUsers", "delUsers", "modUsers",
		"getUsers", "configure", "addTracks", "removeTracks", "muteTracks", "muteUser",
	}
	for _, m := range methods {
		// A method of the class: "  create(" or "  async create(".
		re := regexp.MustCompile(`(?m)^  (async )?` + m + `\(`)
		if !re.MatchString(src) {
			t.Errorf("calls.js: no method %s", m)
		}
		if !strings.Contains(types, "  "+m+"(") {
			t.Errorf("calls.d.ts: no method %s", m)
		}
	}
	for _, m := range []string{"on", "off", "close"} {
		if !regexp.MustCompile(`(?m)^  ` + m + `\(`).MatchString(src) {
			t.Errorf("calls.js: no method %s", m)
		}
	}
	for _, want := range []string{"static async connect(", "export class Calls", "export default Calls"} {
		if !strings.Contains(src, want) {
			t.Errorf("calls.js lacks %q", want)
		}
	}
	for _, p := range []string{"channel", "tracks", "status"} {
		if !strings.Contains(src, "get "+p+"()") {
			t.Errorf("calls.js: no property %s", p)
		}
	}
	// Every event of the call API is typed.
	for _, ev := range []string{
		"track:add", "track:mute", "track:del", "cnl:create", "cnl:config", "cnl:delete",
		"cnl:req", "user:join", "user:left", "user:add", "user:del", "user:mod",
		"status", "newcall", "disconnected", "reconnected",
	} {
		if !strings.Contains(types, `'`+ev+`':`) {
			t.Errorf("calls.d.ts: event %s is not typed", ev)
		}
	}
}

// TestSDKUnits runs the SDK's JavaScript unit tests (test/*.test.mjs: a
// scripted server and fake WebRTC) with node, when node is installed.
func TestSDKUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	files, err := filepath.Glob("test/*.test.mjs")
	if err != nil || len(files) == 0 {
		t.Fatalf("no SDK unit tests in test/ (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, append([]string{"--test"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
}
