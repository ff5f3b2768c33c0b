package niah

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestModelFiller(t *testing.T) {
	a := modelFiller(7, 5000)
	b := modelFiller(7, 20000)
	if len(a) < 5000 || len(b) < 20000 {
		t.Fatalf("short filler: %d, %d", len(a), len(b))
	}
	if !strings.HasPrefix(b, a) {
		t.Error("a longer filler does not extend a shorter one")
	}
	if modelFiller(7, 5000) != a {
		t.Error("filler not deterministic")
	}
	if modelFiller(8, 5000) == a {
		t.Error("filler does not depend on the seed")
	}
	if strings.ContainsAny(b, "0123456789") {
		t.Error("filler has digits")
	}
	if regexp.MustCompile(`(?i)\b(pass|key)\b`).MatchString(b) {
		t.Error("filler uses the needle's words")
	}
	if !strings.HasSuffix(b, ".") || !strings.Contains(b, ". ") || !strings.Contains(b, ".\n\n") {
		t.Error("filler is not sentences in paragraphs")
	}
	for _, s := range strings.Split(b, ". ") {
		if s == "" || strings.Contains(s, "  ") {
			t.Fatalf("odd sentence %q", s)
		}
	}
}

func TestModelKey(t *testing.T) {
	seen := map[string]bool{}
	for s := range 200 {
		k := modelKey(1, 4096, 0.5, s)
		if len(k) != 5 || strings.Trim(k, "0123456789") != "" || k[0] == '0' {
			t.Fatalf("key %q is not five digits", k)
		}
		seen[k] = true
	}
	if len(seen) < 190 {
		t.Errorf("only %d distinct keys in 200", len(seen))
	}
	if k1, k2 := modelKey(1, 4096, 0.5, 3), modelKey(1, 4096, 0.5, 3); k1 != k2 {
		t.Error("key not deterministic")
	}
	negZero := -1.0 * 0
	negZero = -negZero
	if modelKey(1, 10, 0, 0) != modelKey(1, 10, negZero, 0) {
		t.Error("-0 and 0 give different keys")
	}
	if modelKey(1, 10, 0.5, 0) == modelKey(2, 10, 0.5, 0) && modelKey(1, 10, 0.5, 1) == modelKey(2, 10, 0.5, 1) {
		t.Error("key does not depend on the seed")
	}
	if n := modelNeedle("12345"); n != "The pass key is 12345. Remember it. 12345 is the pass key." {
		t.Errorf("needle %q", n)
	}
}

func TestModelInsert(t *testing.T) {
	// Token 1 is the period: sentences are [5 9 1] [5 5 1] [5].
	body := []int{5, 9, 1, 5, 5, 1, 5}
	period := map[int]bool{1: true}
	needle := []int{7, 7}
	for _, c := range []struct {
		depth float64
		pos   int
	}{
		{0, 0},
		{0.2, 0},  // int(1.4) = 1, back to 0
		{0.5, 3},  // int(3.5) = 3, after the first period
		{0.7, 3},  // int(4.9) = 4, back to 3
		{0.99, 6}, // int(6.93) = 6, after the second period
		{1, 7},    // appended
	} {
		got, pos := modelInsert(body, needle, c.depth, period)
		want := slices.Concat(body[:c.pos], needle, body[c.pos:])
		if pos != c.pos || !slices.Equal(got, want) {
			t.Errorf("depth %v: at %d %v, want at %d %v", c.depth, pos, got, c.pos, want)
		}
	}
	if !slices.Equal(body, []int{5, 9, 1, 5, 5, 1, 5}) {
		t.Error("modelInsert changed its input")
	}
	if gap, found := modelMaxGap(body, period); gap != 2 || !found {
		t.Errorf("gap %d %v", gap, found)
	}
	if _, found := modelMaxGap([]int{5, 5}, period); found {
		t.Error("found a period that is not there")
	}
}

func TestModelReadHaystackDir(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"b.txt": "Second file. ", "a.txt": "First file. ", "c.md": "Not text.", "d.TXT": "Third file.",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	text, fp, n, err := modelReadHaystackDir(dir)
	if err != nil || text != "First file. Second file. Third file." || n != 3 || !strings.HasPrefix(fp, "sha256:") {
		t.Fatalf("got %q %q %d %v", text, fp, n, err)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("First file changed. "), 0o644)
	if _, fp2, _, _ := modelReadHaystackDir(dir); fp2 == fp {
		t.Error("fingerprint ignores the content")
	}

	empty := t.TempDir()
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "x.txt"), []byte{0xff, 0xfe, 0x00}, 0o644)
	for _, bad := range []string{empty, bin, filepath.Join(dir, "a.txt"), filepath.Join(dir, "missing")} {
		if _, _, _, err := modelReadHaystackDir(bad); !errors.Is(err, ErrModelOptions) {
			t.Errorf("%s: %v, want ErrModelOptions", bad, err)
		}
	}
}

func TestModelClipText(t *testing.T) {
	s := "aé😀b"
	for n := range len(s) + 2 {
		got, clipped := modelClipText(s, n)
		if !strings.HasPrefix(s, got) || len(got) > n || clipped != (len(got) < len(s)) || !modelValidUTF8(got) {
			t.Errorf("clip %d: %q %v", n, got, clipped)
		}
	}
}

func modelValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
