package docs

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The docs checked: the repository's README.md, every docs/*.md and the
// README.md of every directory below the root.
//
// What a doc may name, and how it is checked (anything else in it is
// prose and left alone: `connected`, `status`, `q`, `MaxDropout` or
// `calls.on('x')` are never looked up):
//
//  1. Go identifiers, in an inline code span (`…`) that is exactly a
//     dotted name, optionally with a leading * and a trailing call
//     "(…)": `forward.NewTrack`, `Track.HandleRTP`, `*webrtc.Peer`,
//     `Track.SetMute(source, on)`, `TrackConfig.Feedback`, `Track.kf.wanted`.
//     - X.Y where X is the name of a package of this module: Y must be a
//       top-level name (type, func, var, const) of such a package; with a
//       third part X.Y.Z, Y a type, Z must be its field or method.
//     - X.Y where X is a type declared in this module: Y must be a field
//       (named or embedded) or a method of a type of that name.
//     - X.Y where X is an exported type (a capital first letter)
//       declared in this module or in a package it imports: Y must be a
//       field (named or embedded) or a method of a type of that name.
//     - Anything else (a JavaScript object such as `calls.on`, a variable,
//       a lower-case name that is no package, a file name such as
//       `direct.go`): not checked.
//     The packages the module imports (the standard library's and other
//     modules', such as pion's `rtp.Header` or `time.AfterFunc`) count
//     too, under their package names; when a name is both (transport/rtp
//     and pion's rtp), Y may be in either. Exported and unexported names
//     both count: the docs describe the code's owners and fields too.
//     Names are collected by go/parser over every directory of the module
//     holding .go files (tests included, testdata and dot directories left
//     out), and over the imported packages' directories (GOROOT/src, the
//     module cache at the versions go.mod requires; one not downloaded is
//     left out).
//  2. Repository paths: a token with a slash and a file extension (.go,
//     .md, .js, .mjs, .ts, .json, .html, .css, .sh, .txt, .yaml, .yml, .mod,
//     .sum), outside fenced code blocks, in code spans, links or prose:
//     `forward/alloc_test.go`, [protocol](docs/protocol.md). It must exist,
//     relative to the repository root or to the doc's own directory. A
//     "*" in it is a glob that must match at least one file. Tokens that
//     are part of a URL (scheme://…) or start with "/" (a path the server
//     serves, such as /sdk/calls.js) are not repository paths.
//     A markdown link's target ([text](target), not a URL, an anchor or
//     a path from "/") must exist relative to the doc's directory.
//  3. Nothing outside the repository: a path that starts with /work/,
//     /home/, /tmp/ or ~/ fails wherever it appears (fenced blocks
//     included), and so does a path of rule 2 whose ../ climb out of the
//     repository from the doc's directory.
//  4. Command flags: on a line that runs one of the commands of cmd/
//     (the word callserver, linkrelay … as a command: "go run
//     ./cmd/callserver -x", "callserver -x"), in a code span or a fenced
//     block, with the lines a trailing backslash continues joined, every
//     -flag or --flag after the command's name must be defined in
//     cmd/<name>/*.go (flag.String("name", …), fs.DurationVar(&v, "name",
//     …) and the like), or be -h/-help.

// repoRoot is the module root: the docs directory's parent.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above docs/: %v", err)
	}
	return root
}

// docFiles lists the docs checked, relative to root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	md, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range md {
		rel, _ := filepath.Rel(root, f)
		files = append(files, rel)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "README.md" && filepath.Dir(path) != root {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules"
}

// goNames is what the module declares.
type goNames struct {
	pkgs    map[string]map[string]bool // package name → top-level names
	members map[string]map[string]bool // type name → fields and methods (all packages)
	embeds  map[string]map[string]bool // type name → the types it embeds (promoted members)
}

// collect parses every Go file of the module below root.
func collect(t *testing.T, root string) *goNames {
	t.Helper()
	n := &goNames{pkgs: map[string]map[string]bool{}, members: map[string]map[string]bool{}, embeds: map[string]map[string]bool{}}
	fset := token.NewFileSet()
	imports := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		// The package's name as docs use it: package foo_test counts as foo.
		pkg := strings.TrimSuffix(f.Name.Name, "_test")
		if pkg == "main" {
			pkg = filepath.Base(filepath.Dir(path))
		}
		n.addFile(pkg, f)
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil {
				imports[p] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range importDirs(t, root, imports) {
		for _, f := range parseDir(t, fset, dir) {
			n.addFile(f.Name.Name, f)
		}
	}
	return n
}

// parseDir parses the non-test Go files of one directory.
func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var out []*ast.File
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// importDirs finds the source directories of the imported packages
// outside the module: the standard library's in GOROOT, other modules' in
// the module cache at the version go.mod requires.
func importDirs(t *testing.T, root string, imports map[string]bool) []string {
	t.Helper()
	env := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	goroot, modcache := env("GOROOT"), env("GOMODCACHE")
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	self := ""
	required := map[string]string{} // module path → version
	for _, l := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "require "))
		switch {
		case len(f) >= 2 && f[0] == "module":
			self = f[1]
		case len(f) >= 2 && strings.HasPrefix(f[1], "v") && strings.Contains(f[0], "."):
			required[f[0]] = f[1]
		}
	}
	var dirs []string
	for p := range imports {
		if p == self || strings.HasPrefix(p, self+"/") || p == "C" {
			continue
		}
		if !strings.Contains(strings.Split(p, "/")[0], ".") {
			dirs = append(dirs, filepath.Join(goroot, "src", p))
			continue
		}
		mod := ""
		for m := range required {
			if (p == m || strings.HasPrefix(p, m+"/")) && len(m) > len(mod) {
				mod = m
			}
		}
		if mod == "" {
			continue
		}
		dir := filepath.Join(modcache, escapePath(mod)+"@"+required[mod], strings.TrimPrefix(p, mod))
		if _, err := os.Stat(dir); err == nil {
			dirs = append(dirs, dir)
		}
	}
	sort.Strings(dirs)
	return dirs
}

// escapePath is the module cache's spelling of a module path: each capital
// letter becomes "!" and its lower case.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (n *goNames) add(m map[string]map[string]bool, key, name string) {
	if m[key] == nil {
		m[key] = map[string]bool{}
	}
	m[key][name] = true
}

func (n *goNames) addFile(pkg string, f *ast.File) {
	if n.pkgs[pkg] == nil {
		n.pkgs[pkg] = map[string]bool{}
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				n.add(n.pkgs, pkg, d.Name.Name)
				continue
			}
			if len(d.Recv.List) == 1 {
				if recv := recvType(d.Recv.List[0].Type); recv != "" {
					n.add(n.members, recv, d.Name.Name)
				}
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					n.add(n.pkgs, pkg, s.Name.Name)
					if n.members[s.Name.Name] == nil {
						n.members[s.Name.Name] = map[string]bool{}
					}
					n.addMembers(s.Name.Name, s.Type)
				case *ast.ValueSpec:
					for _, id := range s.Names {
						n.add(n.pkgs, pkg, id.Name)
					}
				}
			}
		}
	}
}

// addMembers records a struct's fields (embedded ones by their type's
// name) and an interface's methods.
func (n *goNames) addMembers(typ string, expr ast.Expr) {
	switch e := expr.(type) {
	case *ast.StructType:
		for _, fld := range e.Fields.List {
			if len(fld.Names) == 0 {
				if name := recvType(fld.Type); name != "" {
					n.add(n.members, typ, name)
					n.add(n.embeds, typ, name)
				}
			}
			for _, id := range fld.Names {
				n.add(n.members, typ, id.Name)
			}
		}
	case *ast.InterfaceType:
		for _, m := range e.Methods.List {
			for _, id := range m.Names {
				n.add(n.members, typ, id.Name)
			}
			if len(m.Names) == 0 {
				if name := recvType(m.Type); name != "" {
					n.add(n.embeds, typ, name)
				}
			}
		}
	}
}

// recvType is the name of a receiver or embedded type: T, *T, T[P], pkg.T.
func recvType(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.StarExpr:
		return recvType(x.X)
	case *ast.IndexExpr:
		return recvType(x.X)
	case *ast.IndexListExpr:
		return recvType(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

// check returns what is wrong with one dotted name, or "".
func (n *goNames) check(parts []string) string {
	x, y := parts[0], parts[1]
	if top, ok := n.pkgs[x]; ok {
		if !top[y] {
			return "package " + x + " declares no " + y
		}
		if len(parts) > 2 {
			if _, ok := n.members[y]; ok && !n.has(y, parts[2], 0) {
				return "type " + y + " has no field or method " + parts[2]
			}
		}
		return ""
	}
	if x[0] < 'A' || x[0] > 'Z' {
		return ""
	}
	if _, ok := n.members[x]; ok && !n.has(x, y, 0) {
		return "type " + x + " has no field or method " + y
	}
	return ""
}

// has tells whether a type of that name has the member, its own or
// promoted from a type it embeds.
func (n *goNames) has(typ, member string, depth int) bool {
	if n.members[typ][member] {
		return true
	}
	if depth < 5 {
		for e := range n.embeds[typ] {
			if n.has(e, member, depth+1) {
				return true
			}
		}
	}
	return false
}

// cmdFlags returns, for each directory of cmd/, the flags its Go files define.
func cmdFlags(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	defines := map[string]bool{
		"Bool": true, "BoolVar": true, "BoolFunc": true, "Duration": true, "DurationVar": true,
		"Float64": true, "Float64Var": true, "Func": true, "Int": true, "IntVar": true,
		"Int64": true, "Int64Var": true, "String": true, "StringVar": true, "TextVar": true,
		"Uint": true, "UintVar": true, "Uint64": true, "Uint64Var": true, "Var": true,
	}
	out := map[string]map[string]bool{}
	dirs, err := filepath.Glob(filepath.Join(root, "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		name := filepath.Base(dir)
		flags := map[string]bool{"h": true, "help": true}
		for _, f := range parseDir(t, fset, dir) {
			ast.Inspect(f, func(node ast.Node) bool {
				call, ok := node.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !defines[sel.Sel.Name] {
					return true
				}
				// The flag's name is the first string literal argument: the
				// first for String, the second for StringVar and Var.
				for _, arg := range call.Args[:min(2, len(call.Args))] {
					if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							flags[s] = true
						}
						break
					}
				}
				return true
			})
		}
		out[name] = flags
	}
	return out
}

var (
	codeSpan = regexp.MustCompile("`([^`\n]+)`")
	// A dotted Go name: X.Y or X.Y.Z, optionally *X.Y, optionally called.
	dotted = regexp.MustCompile(`^[*&]?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){1,2})(?:\(.*\))?$`)
	// A relative path with a slash and a file extension.
	pathTok = regexp.MustCompile(`[A-Za-z0-9_.*-]*[A-Za-z0-9_*-]/[A-Za-z0-9_./*-]*\.(?:go|md|js|mjs|ts|json|html|css|sh|txt|yaml|yml|mod|sum)\b`)
	// Paths outside the repository.
	outside    = regexp.MustCompile(`(?:^|[\s(\x60'"])(/work/|/home/|/tmp/|~/)[^\s)\x60'"]*`)
	fileExt    = regexp.MustCompile(`\.(?:go|md|js|mjs|ts|json|html|css|sh|txt|yaml|yml|mod|sum|pem|wav|ivf|h264)$`)
	linkTarget = regexp.MustCompile(`\]\(([^()\s]+)\)`)
	flagTok    = regexp.MustCompile(`^--?([A-Za-z][A-Za-z0-9_-]*)`)
)

// doc is one markdown file cut into prose lines and fenced-block lines.
type doc struct {
	name   string
	prose  []line
	fenced []line
}

type line struct {
	n    int
	text string
}

func readDoc(t *testing.T, root, name string) doc {
	t.Helper()
	f, err := os.Open(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := doc{name: name}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	inFence := false
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(text), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			d.fenced = append(d.fenced, line{n, text})
		} else {
			d.prose = append(d.prose, line{n, text})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// commandLines joins the lines a trailing backslash continues.
func commandLines(lines []line) []line {
	var out []line
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		for strings.HasSuffix(strings.TrimSpace(l.text), `\`) && i+1 < len(lines) {
			i++
			l.text = strings.TrimSuffix(strings.TrimSpace(l.text), `\`) + " " + lines[i].text
		}
		out = append(out, l)
	}
	return out
}

// checkFlags reports the undefined flags of every command line in text.
func checkFlags(text string, flags map[string]map[string]bool) []string {
	var bad []string
	words := strings.Fields(text)
	for i, w := range words {
		cmd := filepath.Base(strings.Trim(w, `"'()`))
		defined, ok := flags[cmd]
		if !ok || cmd == w && i > 0 && !isCommandPosition(words[i-1]) {
			continue
		}
		for _, arg := range words[i+1:] {
			if strings.ContainsAny(arg, "|;&><") {
				break // the command line ends
			}
			m := flagTok.FindStringSubmatch(arg)
			if m == nil {
				continue
			}
			if !defined[m[1]] {
				bad = append(bad, cmd+" has no flag -"+m[1])
			}
		}
	}
	return bad
}

// isCommandPosition tells whether a bare command name after word is run
// as a command (not, say, "the callserver binary").
func isCommandPosition(word string) bool {
	return slices.Contains([]string{"$", "#", "sudo", "exec", "run", "time", "env"}, word) || strings.HasSuffix(word, "=")
}

func TestDocsNameWhatExists(t *testing.T) {
	root := repoRoot(t)
	names := collect(t, root)
	flags := cmdFlags(t, root)
	for _, name := range docFiles(t, root) {
		d := readDoc(t, root, name)
		dir := filepath.Dir(filepath.Join(root, name))
		fail := func(n int, format string, args ...any) {
			t.Helper()
			t.Errorf("%s:%d: "+format, append([]any{name, n}, args...)...)
		}
		for _, l := range d.prose {
			// 1. Go identifiers in code spans.
			for _, m := range codeSpan.FindAllStringSubmatch(l.text, -1) {
				span := strings.TrimSpace(m[1])
				if g := dotted.FindStringSubmatch(span); g != nil && !fileExt.MatchString(span) {
					if why := names.check(strings.Split(g[1], ".")); why != "" {
						fail(l.n, "`%s`: %s", span, why)
					}
				}
			}
			// 2. Repository paths.
			for _, loc := range pathTok.FindAllStringIndex(l.text, -1) {
				// Take in a leading ./ or ../ chain: a path relative to the doc.
				start := loc[0]
				for {
					if strings.HasSuffix(l.text[:start], "../") {
						start -= 3
					} else if strings.HasSuffix(l.text[:start], "./") && !strings.HasSuffix(l.text[:start], "../") {
						start -= 2
					} else {
						break
					}
				}
				p := l.text[start:loc[1]]
				before := l.text[:start]
				if strings.HasSuffix(before, "/") || strings.HasSuffix(before, ":") || strings.HasSuffix(before, "@") || strings.HasSuffix(before, ".") {
					continue // part of a URL, an absolute path or module@version
				}
				if rel, err := filepath.Rel(root, filepath.Join(dir, p)); strings.HasPrefix(p, "../") && (err != nil || strings.HasPrefix(rel, "..")) {
					fail(l.n, "points outside the repository: %s", p)
					continue
				}
				if !exists(root, dir, p) {
					fail(l.n, "path %s does not exist", p)
				}
			}
			// Link targets: relative to the doc, inside the repository.
			for _, m := range linkTarget.FindAllStringSubmatch(l.text, -1) {
				target := strings.SplitN(m[1], "#", 2)[0]
				if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "/") {
					continue
				}
				full := filepath.Join(dir, target)
				if rel, err := filepath.Rel(root, full); err != nil || strings.HasPrefix(rel, "..") {
					fail(l.n, "link points outside the repository: %s", target)
				} else if _, err := os.Stat(full); err != nil {
					fail(l.n, "link target %s does not exist", target)
				}
			}
		}
		// 3. Nothing outside the repository.
		for _, l := range append(append([]line(nil), d.prose...), d.fenced...) {
			for _, m := range outside.FindAllString(l.text, -1) {
				fail(l.n, "points outside the repository: %s", strings.TrimSpace(m))
			}
		}
		// 4. Command flags, in fenced blocks and in code spans.
		for _, l := range commandLines(d.fenced) {
			for _, why := range checkFlags(l.text, flags) {
				fail(l.n, "%s", why)
			}
		}
		for _, l := range d.prose {
			for _, m := range codeSpan.FindAllStringSubmatch(l.text, -1) {
				for _, why := range checkFlags(m[1], flags) {
					fail(l.n, "`%s`: %s", m[1], why)
				}
			}
		}
	}
}

// exists tells whether p names a file of the repository, relative to the
// root or to dir.
func exists(root, dir, p string) bool {
	for _, base := range []string{root, dir} {
		full := filepath.Join(base, p)
		if rel, err := filepath.Rel(root, full); err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if strings.Contains(p, "*") {
			if m, _ := filepath.Glob(full); len(m) > 0 {
				return true
			}
			continue
		}
		if _, err := os.Stat(full); err == nil {
			return true
		}
	}
	return false
}
