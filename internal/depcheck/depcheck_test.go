package depcheck

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Packages whose dependencies must not contain River: the library (web UI
// included) and the command line every user binary links (cli.Main).
var noRiver = []string{"./rocketjob", "./sliced", "./server", "./encryption", "./rocketjobweb", "./cmd/rocketjob/cli", "./cmd/rocketjob"}

// Library packages whose dependencies must not contain the embedded
// database: a program that talks to a real MongoDB, and mounts the web UI
// in its own server, links only these.
var noEmbedded = []string{"./rocketjob", "./sliced", "./server", "./encryption", "./rocketjobweb"}

// isRiver and isEmbedded name the forbidden packages.
func isRiver(path string) bool { return strings.Contains(path, "riverqueue") }

func isEmbedded(path string) bool {
	return strings.HasPrefix(path, "github.com/FerretDB/") ||
		path == "modernc.org/sqlite" || strings.HasPrefix(path, "modernc.org/sqlite/") ||
		path == "github.com/rocketjob-go/rocketjob/internal/embedded" ||
		strings.HasPrefix(path, "github.com/rocketjob-go/rocketjob/internal/embedded/")
}

// Library packages that must not link the file-format plug-ins' heavy
// dependencies (excelize, OpenPGP): only sliced/xlsx and sliced/pgp (and
// the command line that imports them) do.
var noFilePlugins = []string{"./rocketjob", "./sliced", "./server", "./encryption"}

func isFilePlugin(path string) bool {
	return strings.HasPrefix(path, "github.com/xuri/") || strings.HasPrefix(path, "github.com/ProtonMail/")
}

func TestNoFilePluginsInCore(t *testing.T) {
	checkDeps(t, noFilePlugins, "a file-format plug-in's dependency (import sliced/xlsx or sliced/pgp where it is needed)", isFilePlugin)
}

func TestNoRiverInLibrary(t *testing.T) {
	checkDeps(t, noRiver, "River (the benchmark's peer: it belongs in the bench module)", isRiver)
}

func TestNoEmbeddedDatabaseInCore(t *testing.T) {
	checkDeps(t, noEmbedded, "the embedded database (keep it behind internal/embedded, used by the CLI only)", isEmbedded)
}

// TestGoModHasNoRiver: the root go.mod does not require River (the bench
// module does).
func TestGoModHasNoRiver(t *testing.T) {
	root := moduleRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "//")
		if isRiver(line) {
			t.Errorf("go.mod:%d names River (%s): the root module must not require it; the benchmark's go.mod (bench/go.mod) does", n, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkDeps fails for every root package whose dependencies include a
// package for which bad is true, naming the chain of imports that pulls it
// in.
func checkDeps(t *testing.T, roots []string, what string, bad func(string) bool) {
	t.Helper()
	root := moduleRoot(t)
	paths := strings.Fields(goList(t, root, append([]string{"-f", "{{.ImportPath}}"}, roots...)...))
	if len(paths) != len(roots) {
		t.Fatalf("go list %v gave %d packages: %v", roots, len(paths), paths)
	}
	imports := map[string][]string{}
	out := goList(t, root, append([]string{"-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`}, roots...)...)
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	for _, p := range paths {
		if chain := findImport(imports, p, bad); chain != nil {
			t.Errorf("%s depends on %s: %s imports %s\n(chain: %s)",
				p, what, chain[len(chain)-2], chain[len(chain)-1], strings.Join(chain, " -> "))
		}
	}
}

// findImport returns the shortest import chain from root to a package for
// which bad is true, or nil.
func findImport(imports map[string][]string, root string, bad func(string) bool) []string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports[p] {
			if _, seen := parent[q]; seen {
				continue
			}
			parent[q] = p
			if bad(q) {
				chain := []string{q}
				for x := p; x != ""; x = parent[x] {
					chain = append(chain, x)
				}
				slices.Reverse(chain)
				return chain
			}
			queue = append(queue, q)
		}
	}
	return nil
}

// goTool is the go command on PATH, else the one of the toolchain that
// built this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no go command on PATH nor at %s", p)
	}
	return p
}

// goList runs go list in dir and returns its standard output.
func goList(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(goTool(t), append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// moduleRoot is the folder of the root module's go.mod (two levels up).
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at the module root %s: %v", root, err)
	}
	return root
}
