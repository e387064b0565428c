package plane_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestTransportsImportNeitherChannelNorPlane: `go list -deps` of every
// transport package names neither the call API (channel) nor the plane
// or its adapters: the adapters depend on the transports, never the other
// way round.
func TestTransportsImportNeitherChannelNorPlane(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the transports' dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json=ImportPath,Deps", "./transport/...")
	cmd.Dir = ".." // the module root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	const mod = "github.com/callcore/callcore/"
	forbidden := func(p string) bool {
		return p == mod+"channel" || p == mod+"plane" || strings.HasPrefix(p, mod+"plane/") || strings.HasPrefix(p, mod+"channel/")
	}
	var seen []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var pkg struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&pkg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pkg.ImportPath, mod+"transport") {
			continue // a dependency listed by -deps
		}
		seen = append(seen, pkg.ImportPath)
		for _, d := range pkg.Deps {
			if forbidden(d) {
				t.Errorf("%s depends on %s", pkg.ImportPath, d)
			}
		}
	}
	for _, want := range []string{"transport", "transport/webrtc", "transport/rtp", "transport/link", "transport/memory"} {
		if !slices.Contains(seen, mod+want) {
			t.Errorf("go list did not list %s (listed %q)", want, seen)
		}
	}
}
