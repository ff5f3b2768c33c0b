//go:build cgo

package longbench

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Chinese segmentation speed (BENCHMARKS.md, "LongBench Chinese
// segmentation"): the port (NewJieba) against gojieba's own cppjieba Cut
// (HMM on, same dictionary files, no user dictionary), on the committed
// corpus's Chinese texts repeated to 1 MiB. Each benchmark also reports how
// many of the corpus's distinct texts, and of the port's tokens (as
// character spans), the other segmenter cuts alike; the port cuts as Python
// jieba 0.42.1 does (docs/longbench.md), so that is agreement with
// jieba.cut(s, cut_all=False). go-ego/gse is compared in
// tools/longbench/gsebench, a module of its own.
//
//	go test ./longbench -run '^$' -bench Jieba -benchtime 2s -count 6 | benchstat -

// zhBenchSets are the Chinese data sets of the committed corpus.
var zhBenchSets = []string{"dureader", "lsht", "multifieldqa_zh", "passage_retrieval_zh", "vcsum"}

var hanRE = regexp.MustCompile(`\p{Han}`)

// zhBenchTexts are the distinct strings with a Han character among the
// Chinese data sets' inputs, contexts, answers and predictions in
// testdata/official (data, then pred/a, b, c), in file order.
func zhBenchTexts(tb testing.TB) []string {
	tb.Helper()
	dir := filepath.Join("testdata", "official")
	seen := map[string]bool{}
	var out []string
	for _, sub := range []string{"data", "pred/a", "pred/b", "pred/c"} {
		for _, set := range zhBenchSets {
			f, err := os.Open(filepath.Join(dir, sub, set+".jsonl"))
			if err != nil {
				tb.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				var r struct {
					Input, Context, Pred string
					Answers              []string
				}
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					tb.Fatal(err)
				}
				for _, s := range append([]string{r.Input, r.Context, r.Pred}, r.Answers...) {
					if hanRE.MatchString(s) && !seen[s] {
						seen[s] = true
						out = append(out, s)
					}
				}
			}
			f.Close()
			if err := sc.Err(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// benchCorpus repeats texts until they hold at least 1 MiB; it returns the
// repeated list and its size in bytes.
func benchCorpus(texts []string) ([]string, int64) {
	var out []string
	var n int64
	for n < 1<<20 {
		for _, s := range texts {
			out = append(out, s)
			n += int64(len(s))
		}
	}
	return out, n
}

// cutAgreement compares two segmenters' cuts of the same texts: the share
// of texts cut identically, and the share of ref's tokens (character spans)
// that other also cut.
func cutAgreement(texts []string, ref, other func(string) []string) (textPct, tokenPct float64) {
	type span struct{ a, b int }
	spans := func(toks []string) map[span]bool {
		m := map[span]bool{}
		i := 0
		for _, t := range toks {
			n := len([]rune(t))
			m[span{i, i + n}] = true
			i += n
		}
		return m
	}
	same, refTokens, both := 0, 0, 0
	for _, s := range texts {
		r, o := ref(s), other(s)
		eq := len(r) == len(o)
		for i := 0; eq && i < len(r); i++ {
			eq = r[i] == o[i]
		}
		if eq {
			same++
		}
		rs, os := spans(r), spans(o)
		refTokens += len(rs)
		for k := range rs {
			if os[k] {
				both++
			}
		}
	}
	return 100 * float64(same) / float64(len(texts)), 100 * float64(both) / float64(refTokens)
}

func benchCut(b *testing.B, texts []string, cut func(string) []string, ref func(string) []string) {
	corpus, size := benchCorpus(texts)
	textPct, tokenPct := cutAgreement(texts, ref, cut)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, s := range corpus {
			cut(s)
		}
	}
	b.ReportMetric(textPct, "%texts-as-jieba")
	b.ReportMetric(tokenPct, "%tokens-as-jieba")
}

// BenchmarkJiebaPort is the port, the scorer's segmenter.
func BenchmarkJiebaPort(b *testing.B) {
	seg, free, err := NewJieba()
	if err != nil {
		b.Skip(err)
	}
	defer free()
	benchCut(b, zhBenchTexts(b), seg.Cut, seg.Cut)
}

// BenchmarkJiebaGojieba is gojieba v1.4.6's Cut(s, true) (cppjieba
// MixSegment, HMM on) through cgo; allocations count Go's side only.
func BenchmarkJiebaGojieba(b *testing.B) {
	seg, free, err := NewJieba()
	if err != nil {
		b.Skip(err)
	}
	defer free()
	empty := filepath.Join(b.TempDir(), "user.utf8")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	cpp := newCppJieba(empty)
	defer cpp.Free()
	benchCut(b, zhBenchTexts(b), func(s string) []string { return cpp.Cut(s, true) }, seg.Cut)
}
