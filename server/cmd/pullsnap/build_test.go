package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot is the server module's folder: the test runs in cmd/pullsnap.
const moduleRoot = "../.."

// build builds the program from the module at root, as toolchain/install.sh
// will: static, without local paths or VCS stamps.
func build(t *testing.T, root, out string, env ...string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", out, "./cmd/pullsnap")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0", "GOOS=linux"}, env...)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(cmd.Args, " "), root, err, output)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// copyModule copies the module's sources to dst, so that a second build
// starts from another folder.
func copyModule(t *testing.T, dst string) {
	t.Helper()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		if d.IsDir() {
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".go") && d.Name() != "go.mod" && d.Name() != "go.sum" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Two builds of one commit, from two folders into two others, are one file:
// its sha256 is what a deploy can compare.
func TestReproducibleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program twice")
	}
	here, elsewhere := t.TempDir(), t.TempDir()
	copyModule(t, filepath.Join(elsewhere, "src"))
	build(t, moduleRoot, filepath.Join(here, "pullsnap"))
	build(t, filepath.Join(elsewhere, "src"), filepath.Join(elsewhere, "pullsnap"))
	a, b := sha256File(t, filepath.Join(here, "pullsnap")), sha256File(t, filepath.Join(elsewhere, "pullsnap"))
	if a != b {
		t.Fatalf("two builds differ: %s and %s", a, b)
	}
	t.Logf("sha256 %s", a)
}

// An ARM backup server (a Raspberry Pi, an ARM NAS) gets a static arm64 build.
func TestBuildsForArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the program")
	}
	out := filepath.Join(t.TempDir(), "pullsnap")
	build(t, moduleRoot, out, "GOARCH=arm64")
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("machine %v; want %v", f.Machine, elf.EM_AARCH64)
	}
	// Static: no program interpreter (ld.so) to find on the host.
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("has an interpreter: not a static binary")
		}
	}
}
