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
	"github.com/misabench/misabench/serving/servingtest"
)

// lbTiny is the tiny data directory of package longbench's tests.
const lbTiny = "../../longbench/testdata/tiny"

// lbRunMain runs the whole command line as main does: exit code, stdout,
// and the one line main prints on stderr.
func lbRunMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// lbFake answers the tiny data's questions.
func lbFake(t *testing.T) *servingtest.Server {
	srv := servingtest.New(t, "toy")
	answers := map[string]string{
		"capital of France":  " City\nQuestion: Who?",
		"legs does a spider": " Distance",
		"Does the model use": "Yes.",
		"Which architecture": "a transformer model",
		"Anna: I will bring": "Anna will bring the cake.",
		"unique paragraphs":  "3",
	}
	srv.Answer = func(r servingtest.Request) string {
		for k, v := range answers {
			if strings.Contains(r.Text(), k) {
				return v
			}
		}
		return "unknown"
	}
	return srv
}

func TestLongBenchRunThenScore(t *testing.T) {
	srv := lbFake(t)
	out := filepath.Join(t.TempDir(), "pred", "toy")
	args := []string{"longbench", "run", "--endpoint", srv.URL, "--model", "toy", "--data", lbTiny, "--out", out,
		"--datasets", "trec,qasper,samsum,passage_count", "--chat", "--concurrency", "4", "--max-len", "1000"}
	code, stdout, stderr := lbRunMain(t, args...)
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"qasper", "chat", "trec", "completion", "score with: misabench longbench score --pred " + out, "predictions in " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("run output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = lbRunMain(t, "longbench", "score", "--data", lbTiny, "--pred", out, "--format", "json")
	if code != 0 {
		t.Fatalf("score: exit %d: %s", code, stderr)
	}
	var res longBenchResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"trec": 50, "qasper": 83.33, "samsum": 100, "passage_count": 100} {
		if sc := res.Variants[0].Scores[name]; sc == nil || *sc.Score != want {
			t.Errorf("%s: %+v, want %v", name, sc, want)
		}
	}

	// A rerun has nothing to do and sends nothing.
	before := srv.Completions() + srv.Calls("/tokenize")
	code, stdout, stderr = lbRunMain(t, append(args, "--format", "json")...)
	var rr longbench.RunResult
	if code != 0 || json.Unmarshal([]byte(stdout), &rr) != nil {
		t.Fatalf("rerun: exit %d: %s %s", code, stderr, stdout)
	}
	for _, d := range rr.Datasets {
		if d.Generated != 0 || d.Resumed != d.Records {
			t.Errorf("rerun: %+v", d)
		}
	}
	if n := srv.Completions() + srv.Calls("/tokenize") - before; n != 0 {
		t.Errorf("rerun sent %d requests", n)
	}
}

func TestLongBenchRunErrors(t *testing.T) {
	srv := lbFake(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "trec.jsonl"), []byte(`{"input": "q", "context": "c", "answers": ["a"], "length": 1, "_id": "x"}`+"\n"+`{"input": `+"\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"longbench", "run", "--endpoint", srv.URL, "--model", "toy", "--data", lbTiny, "--out", out}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"longbench", "run", "--model", "toy", "--data", lbTiny, "--out", out}, 2, "give --endpoint"},
		{[]string{"longbench", "run", "--endpoint", srv.URL, "--data", lbTiny, "--out", out}, 2, "give --model"},
		{[]string{"longbench", "run", "--endpoint", srv.URL, "--model", "toy", "--out", out}, 2, "give --data"},
		{append(base, "--datasets", "trec,nq"), 2, `unknown LongBench data set: "nq"`},
		{append(base, "--datasets", "narrativeqa"), 2, "narrativeqa.jsonl: file does not exist"},
		{[]string{"longbench", "run", "--endpoint", srv.URL, "--model", "toy", "--data", data, "--out", out, "--datasets", "trec"}, 2, "trec.jsonl:2"},
		{append(base, "--endpoint", "localhost:8000"), 2, "not an http(s) URL"},
		{append(base, "--model", "other", "--datasets", "samsum"), 2, `does not serve model "other"`},
		{append(base, "--max-len", "-5"), 2, "max length"},
		// A preset config's "model:" block is not the served model.
		{[]string{"longbench", "run", "--config", "deepseek-v3.2", "--endpoint", srv.URL, "--data", lbTiny, "--out", out}, 2, "give --model"},
	} {
		code, _, stderr := lbRunMain(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d %q, want %d and one line with %q", tc.args[2:], code, stderr, tc.code, tc.want)
		}
	}
	if n := srv.Completions(); n != 0 {
		t.Errorf("bad input sent %d completions", n)
	}
	// --served-model is the flag's name; a preset config does not touch it.
	code, _, stderr := lbRunMain(t, "longbench", "run", "--config", "deepseek-v3.2", "--endpoint", srv.URL, "--served-model", "toy",
		"--data", lbTiny, "--out", out, "--datasets", "passage_count")
	if code != 0 || srv.Completions() != 1 {
		t.Errorf("--served-model with a preset config: exit %d %s, %d completions", code, stderr, srv.Completions())
	}
}
