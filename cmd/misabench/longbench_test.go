package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misabench/misabench/longbench"
)

func lbRun(t *testing.T, args ...string) (string, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(newApp(&stdout, &stderr))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return stdout.String(), exitCode(err), msg
}

func lbWrite(t *testing.T, dir, name string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

const lbTrecClasses = `"all_classes": ["Location", "Number"]`

func lbFixture(t *testing.T) (data, base, misa string) {
	root := t.TempDir()
	data, base, misa = filepath.Join(root, "data"), filepath.Join(root, "base"), filepath.Join(root, "misa")
	lbWrite(t, data, "trec.jsonl",
		`{"input": "q1", "context": "c", "answers": ["Location"], "length": 100, "dataset": "trec", "language": "en", `+lbTrecClasses+`, "_id": "a"}`,
		`{"input": "q2", "context": "c", "answers": ["Number"], "length": 200, "dataset": "trec", "language": "en", `+lbTrecClasses+`, "_id": "b"}`)
	lbWrite(t, data, "passage_count.jsonl",
		`{"answers": ["3"], "length": 100, "all_classes": null, "_id": "c"}`,
		`{"answers": ["5"], "length": 300, "all_classes": null, "_id": "d"}`)
	// base: trec 1 + 0 (the first-line cut drops "Number" on line 2) → 50;
	// passage_count 1 + 0.5 → 75.
	lbWrite(t, base, "trec.jsonl",
		`{"pred": "\nLocation\nQuestion: x", "answers": ["Location"], `+lbTrecClasses+`, "length": 100}`,
		`{"pred": "Type:\nNumber", "answers": ["Number"], `+lbTrecClasses+`, "length": 200}`)
	lbWrite(t, base, "passage_count.jsonl",
		`{"pred": "3", "answers": ["3"], "all_classes": null, "length": 100}`,
		`{"pred": "5 or 6", "answers": ["5"], "all_classes": null, "length": 300}`)
	lbWrite(t, base, "result.json", `{}`)
	lbWrite(t, misa, "trec.jsonl",
		`{"pred": "Number", "answers": ["Number"], `+lbTrecClasses+`, "length": 200}`,
		`{"pred": "Location", "answers": ["Location"], `+lbTrecClasses+`, "length": 100}`)
	lbWrite(t, misa, "passage_count.jsonl",
		`{"pred": "3", "answers": ["3"], "all_classes": null, "length": 100}`,
		`{"pred": "5", "answers": ["5"], "all_classes": null, "length": 300}`)
	return
}

func TestLongBenchScore(t *testing.T) {
	data, base, misa := lbFixture(t)
	out, code, msg := lbRun(t, "longbench", "score", "--data", data, "--pred", base, "--pred", misa)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	for _, want := range []string{"50.00 (2)", "100.00 (2)", "+50.00", "75.00 (2)", "+25.00", "62.50 (2)", "+37.50", "Few-shot", "Avg"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	out, code, msg = lbRun(t, "longbench", "score", "--pred", base, "--pred", misa, "--format", "json")
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, msg)
	}
	var res longBenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if got := *res.Variants[0].Scores["trec"].Score; got != 50 {
		t.Errorf("json trec = %v", got)
	}

	out, code, _ = lbRun(t, "longbench", "score", "--pred", base, "--format", "csv")
	if code != 0 || !strings.Contains(out, "dataset,en,passage_count,,75,2,0") {
		t.Errorf("csv (exit %d):\n%s", code, out)
	}
}

func TestLongBenchScoreE(t *testing.T) {
	_, base, _ := lbFixture(t)
	out, code, msg := lbRun(t, "longbench", "score", "--e", "--pred", base, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	var res longBenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	b := res.Variants[0].Scores["passage_count"].Buckets
	if *b["0-4k"] != 75 || b["4-8k"] != nil || b["8k+"] != nil {
		t.Errorf("buckets %v", out)
	}
}

func TestLongBenchScoreErrors(t *testing.T) {
	data, base, _ := lbFixture(t)
	bad := filepath.Join(t.TempDir(), "bad")
	lbWrite(t, bad, "trec.jsonl", `{"pred": "x", "answers": ["Location"], `+lbTrecClasses+`, "length": 1}`, `{not json`)
	unknown := filepath.Join(t.TempDir(), "unknown")
	lbWrite(t, unknown, "nq.jsonl", `{"pred": "x", "answers": ["y"], "length": 1}`)
	zh := filepath.Join(t.TempDir(), "zh")
	lbWrite(t, zh, "dureader.jsonl", `{"pred": "你好", "answers": ["你好"], "length": 1}`)
	other := filepath.Join(t.TempDir(), "other")
	lbWrite(t, other, "trec.jsonl", `{"pred": "x", "answers": ["Human"], `+lbTrecClasses+`, "length": 1}`)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"longbench", "score"}, 2, "--pred"},
		{[]string{"longbench", "score", "--pred", bad}, 2, "trec.jsonl:2"},
		{[]string{"longbench", "score", "--pred", unknown}, 2, "unknown LongBench data set"},
		{[]string{"longbench", "score", "--pred", filepath.Join(base, "nope")}, 2, "no such file"},
		{[]string{"longbench", "score", "--data", data, "--pred", other}, 2, "matches no record"},
		{[]string{"longbench", "score", "--data", t.TempDir(), "--pred", base}, 2, "no such file"},
		{[]string{"longbench", "score", "--pred", base, "--format", "xml"}, 2, "--format"},
		{[]string{"longbench", "score", "--pred", base, "--fuzz-backend", "rapidfuzz"}, 2, "--fuzz-backend"},
		{[]string{"longbench", "score", "--pred", zh, "--jieba-dict", filepath.Join(data, "nope.txt"), "--jieba-hmm", filepath.Join(data, "nope.hmm")}, 2, "no such file"},
	} {
		_, code, msg := lbRun(t, tc.args...)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, code, msg, tc.code, tc.want)
		}
	}
}

func TestLongBenchScoreChinese(t *testing.T) {
	zh := filepath.Join(t.TempDir(), "zh")
	lbWrite(t, zh, "dureader.jsonl", `{"pred": "我来到北京清华大学", "answers": ["我来到北京清华大学"], "length": 1}`)
	out, code, msg := lbRun(t, "longbench", "score", "--pred", zh)
	if longbench.DefaultJiebaDir() == "" {
		if code != 2 || !strings.Contains(msg, "--jieba-dir") {
			t.Errorf("without cgo: exit %d %q, want 2 naming --jieba-dir", code, msg)
		}
		return
	}
	if code != 0 || !strings.Contains(out, "port of Python jieba") || !strings.Contains(out, "100.00 (1)") {
		t.Errorf("exit %d %q:\n%s", code, msg, out)
	}
}

func TestLongBenchScoreSamples(t *testing.T) {
	_, base, _ := lbFixture(t)
	out, code, msg := lbRun(t, "longbench", "score", "--pred", base, "--format", "json")
	if code != 0 || strings.Contains(out, `"samples"`) {
		t.Fatalf("without --samples: exit %d %q, samples in output:\n%s", code, msg, out)
	}
	out, code, msg = lbRun(t, "longbench", "score", "--pred", base, "--format", "json", "--samples", "--fuzz-backend", "levenshtein")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	var res longBenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	// trec: 1 then 0 (first-line cut); passage_count: 1 then 0.5.
	if got := res.Variants[0].Scores["trec"].Samples; len(got) != 2 || got[0] != 1 || got[1] != 0 {
		t.Errorf("trec samples %v", got)
	}
	if got := res.Variants[0].Scores["passage_count"].Samples; len(got) != 2 || got[1] != 0.5 {
		t.Errorf("passage_count samples %v", got)
	}
}

func TestLongBenchCut(t *testing.T) {
	if longbench.DefaultJiebaDir() == "" {
		t.Skip("no default jieba dictionary without cgo")
	}
	var stdout, stderr bytes.Buffer
	root := newRootCmd(newApp(&stdout, &stderr))
	root.SetIn(strings.NewReader("\"我来到北京清华大学\"\n\"他把资料拷贝到U盘里\"\n\"\"\n"))
	root.SetArgs([]string{"longbench", "cut"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := `["我","来到","北京","清华大学"]` + "\n" + `["他","把","资料","拷贝到","U盘","里"]` + "\n[]\n"
	if stdout.String() != want {
		t.Errorf("cut output:\n%s\nwant:\n%s", stdout.String(), want)
	}
	root = newRootCmd(newApp(&stdout, &stderr))
	root.SetIn(strings.NewReader("not json\n"))
	root.SetArgs([]string{"longbench", "cut"})
	if err := root.ExecuteContext(context.Background()); exitCode(err) != 2 {
		t.Errorf("bad input: %v (exit %d), want exit 2", err, exitCode(err))
	}
}

// lbCut runs `misabench longbench cut` on stdin.
func lbCut(t *testing.T, stdin string, args ...string) (string, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(newApp(&stdout, &stderr))
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"longbench", "cut"}, args...))
	err := root.ExecuteContext(context.Background())
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return stdout.String(), exitCode(err), msg
}

// TestLongBenchJiebaDirMissing: a --jieba-dir (or MISABENCH_JIEBA_DIR)
// without the files is bad input (exit 2), and the one-line message names
// the file tried and the flag. Needs no cgo.
func TestLongBenchJiebaDirMissing(t *testing.T) {
	zh := filepath.Join(t.TempDir(), "zh")
	lbWrite(t, zh, "dureader.jsonl", `{"pred": "你好", "answers": ["你好"], "length": 1}`)
	nope := filepath.Join(t.TempDir(), "nope")
	half := t.TempDir() // the dictionary without the HMM model
	if err := os.WriteFile(filepath.Join(half, longbench.JiebaDictFile), []byte("我 10 r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(name string, code int, msg, path string) {
		t.Helper()
		if code != 2 || !strings.Contains(msg, path) || !strings.Contains(msg, "--jieba-dir") || strings.Contains(msg, "\n") {
			t.Errorf("%s: exit %d %q, want exit 2, one line naming %s and --jieba-dir", name, code, msg, path)
		}
	}
	_, code, msg := lbRun(t, "longbench", "score", "--pred", zh, "--jieba-dir", nope)
	check("score --jieba-dir nope", code, msg, filepath.Join(nope, longbench.JiebaDictFile))
	_, code, msg = lbCut(t, `"你好"`+"\n", "--jieba-dir", nope)
	check("cut --jieba-dir nope", code, msg, filepath.Join(nope, longbench.JiebaDictFile))
	_, code, msg = lbRun(t, "longbench", "score", "--pred", zh, "--jieba-dir", half)
	check("score --jieba-dir without the HMM", code, msg, filepath.Join(half, longbench.JiebaHMMFile))
	t.Setenv("MISABENCH_JIEBA_DIR", nope)
	_, code, msg = lbRun(t, "longbench", "score", "--pred", zh)
	check("MISABENCH_JIEBA_DIR=nope", code, msg, filepath.Join(nope, longbench.JiebaDictFile))
	// The flag wins over the environment; --jieba-dict and --jieba-hmm
	// replace the directory's files (here: the HMM is still missing).
	_, code, msg = lbRun(t, "longbench", "score", "--pred", zh, "--jieba-dir", half)
	check("--jieba-dir over MISABENCH_JIEBA_DIR", code, msg, filepath.Join(half, longbench.JiebaHMMFile))
}

// TestLongBenchJiebaDir: copies of gojieba's two files in another directory
// load as the default does (the dictionary edited into Python jieba's).
func TestLongBenchJiebaDir(t *testing.T) {
	src := longbench.DefaultJiebaDir()
	if src == "" {
		t.Skip("no gojieba files to copy without cgo")
	}
	dir := filepath.Join(t.TempDir(), "jieba dir") // a space in the path, too
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{longbench.JiebaDictFile, longbench.JiebaHMMFile} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zh := filepath.Join(t.TempDir(), "zh")
	lbWrite(t, zh, "dureader.jsonl", `{"pred": "他把资料拷贝到U盘里", "answers": ["他把资料拷贝到U盘里"], "length": 1}`)
	out, code, msg := lbRun(t, "longbench", "score", "--pred", zh, "--jieba-dir", dir)
	if code != 0 || !strings.Contains(out, "100.00 (1)") || !strings.Contains(out, filepath.Join(dir, longbench.JiebaDictFile)+" edited into Python jieba") {
		t.Errorf("score --jieba-dir: exit %d %q:\n%s", code, msg, out)
	}
	// "U盘" is a word only after the edit into Python jieba's dict.txt.
	want := `["他","把","资料","拷贝到","U盘","里"]` + "\n"
	if out, code, msg := lbCut(t, `"他把资料拷贝到U盘里"`+"\n", "--jieba-dir", dir); code != 0 || out != want {
		t.Errorf("cut --jieba-dir: exit %d %q: %s, want %s", code, msg, out, want)
	}
	t.Setenv("MISABENCH_JIEBA_DIR", dir)
	if out, code, msg := lbCut(t, `"他把资料拷贝到U盘里"`+"\n"); code != 0 || out != want {
		t.Errorf("cut with MISABENCH_JIEBA_DIR: exit %d %q: %s, want %s", code, msg, out, want)
	}
}
