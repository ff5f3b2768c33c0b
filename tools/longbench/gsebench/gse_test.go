package gsebench

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/go-ego/gse"

	"github.com/misabench/misabench/longbench"
)

// The corpus, the repetition to 1 MiB and the agreement measures are those
// of longbench/jieba_bench_test.go (kept in step by hand: that file's
// helpers are test code of another module).

var zhSets = []string{"dureader", "lsht", "multifieldqa_zh", "passage_retrieval_zh", "vcsum"}

var hanRE = regexp.MustCompile(`\p{Han}`)

// zhTexts are the distinct strings with a Han character among the Chinese
// data sets' inputs, contexts, answers and predictions in misabench's
// longbench/testdata/official (data, then pred/a, b, c), in file order.
func zhTexts(tb testing.TB) []string {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "longbench", "testdata", "official")
	seen := map[string]bool{}
	var out []string
	for _, sub := range []string{"data", "pred/a", "pred/b", "pred/c"} {
		for _, set := range zhSets {
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

func corpus(texts []string) ([]string, int64) {
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

func agreement(texts []string, ref, other func(string) []string) (textPct, tokenPct float64) {
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

func port(tb testing.TB) longbench.Segmenter {
	tb.Helper()
	seg, _, err := longbench.NewJieba()
	if err != nil {
		tb.Skip(err)
	}
	return seg
}

// newGse loads gse v0.80.3 with its embedded simplified and traditional
// Chinese dictionaries (jiebaDict "") or with the jieba dictionary file
// jiebaDict. With asJieba, its options are set as close to jieba as they go:
// Latin text keeps its case (gse.ToLower, a package variable, is set false
// for the whole test binary) and no word of frequency 1 is dropped
// (MinTokenFreq, default 2). gse still gives every single-character word
// frequency 2 and runs its DAG over punctuation and Latin too.
func newGse(tb testing.TB, jiebaDict string, asJieba bool) func(string) []string {
	tb.Helper()
	var seg gse.Segmenter
	seg.SkipLog = true
	if asJieba {
		seg.MinTokenFreq = 1
	}
	var err error
	if jiebaDict == "" {
		err = seg.LoadDictEmbed("zh")
	} else {
		err = seg.LoadDict(jiebaDict)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return func(s string) []string { return seg.Cut(s, true) }
}

func bench(b *testing.B, cut, ref func(string) []string) {
	texts := zhTexts(b)
	all, size := corpus(texts)
	textPct, tokenPct := agreement(texts, ref, cut)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, s := range all {
			cut(s)
		}
	}
	b.ReportMetric(textPct, "%texts-as-jieba")
	b.ReportMetric(tokenPct, "%tokens-as-jieba")
}

// BenchmarkJiebaPort is the port again, as this run's baseline.
func BenchmarkJiebaPort(b *testing.B) {
	seg := port(b)
	bench(b, seg.Cut, seg.Cut)
}

// BenchmarkJiebaGse: gse's Cut(s, true) (DAG and HMM), on its own
// dictionaries and on jieba's, Latin case kept.
func BenchmarkJiebaGse(b *testing.B) {
	seg := port(b)
	gse.ToLower = false
	dict, _ := longbench.JiebaFiles(longbench.DefaultJiebaDir())
	b.Run("embedded-dict", func(b *testing.B) { bench(b, newGse(b, "", true), seg.Cut) })
	b.Run("jieba-dict", func(b *testing.B) { bench(b, newGse(b, dict, true), seg.Cut) })
}

// TestAgreement logs how gse's cuts agree with the port's (Python jieba's)
// on the corpus, in gse's default configuration and set as close to jieba
// as it goes, and with the port on the same unedited gojieba dictionary.
func TestAgreement(t *testing.T) {
	seg := port(t)
	texts := zhTexts(t)
	dict, hmm := longbench.JiebaFiles(longbench.DefaultJiebaDir())
	raw, err := longbench.LoadJieba(dict, hmm) // gojieba's dictionary, unedited
	if err != nil {
		t.Fatal(err)
	}
	defer func() { gse.ToLower = true }()
	for _, c := range []struct {
		name    string
		dict    string
		asJieba bool
		ref     func(string) []string
	}{
		{"gse defaults (embedded dictionaries, Latin lower-cased)", "", false, seg.Cut},
		{"gse, embedded dictionaries, as jieba", "", true, seg.Cut},
		{"gse, gojieba's jieba.dict.utf8, as jieba", dict, true, seg.Cut},
		{"gse, gojieba's jieba.dict.utf8, as jieba; against the port on that dictionary unedited", dict, true, raw.Cut},
	} {
		gse.ToLower = !c.asJieba
		textPct, tokenPct := agreement(texts, c.ref, newGse(t, c.dict, c.asJieba))
		t.Logf("%s: %d texts, %.2f%% cut identically, %.2f%% of the reference's tokens", c.name, len(texts), textPct, tokenPct)
	}
}
