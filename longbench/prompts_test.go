package longbench

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	fields := map[string]string{"context": "C {input} }{", "input": "Q"}
	for tmpl, want := range map[string]string{
		"{context}|{input}":     "C {input} }{|Q", // values are not parsed again
		"{{context}} {{}} }}{{": "{context} {} }{",
		"":                      "",
		"no fields":             "no fields",
		"{input}{input}":        "QQ",
		"中文：{input}\n回答：":       "中文：Q\n回答：",
	} {
		got, err := Format(tmpl, fields)
		if err != nil || got != want {
			t.Errorf("Format(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	for tmpl, want := range map[string]string{
		"a } b":        "single '}'",
		"a {context":   "expected '}'",
		"{}":           "unsupported",
		"{0}":          "unsupported",
		"{context.x}":  "unsupported",
		"{context!r}":  "unsupported",
		"{context:>9}": "unsupported",
		"{answers}":    `no "answers" field`,
	} {
		if _, err := Format(tmpl, fields); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Format(%q): %v, want an error with %q", tmpl, err, want)
		}
	}
}

// TestTemplates pins the 21 templates: a hash of the strings of
// dataset2prompt.json as evals.md §A.6 gives them (computed from that
// text, not from this file), so that an edit shows.
func TestTemplates(t *testing.T) {
	if len(dataset2prompt) != len(Datasets) {
		t.Fatalf("%d templates for %d data sets", len(dataset2prompt), len(Datasets))
	}
	names := make([]string, 0, len(dataset2prompt))
	for _, d := range Datasets {
		if _, ok := dataset2prompt[d.Name]; !ok {
			t.Errorf("no template for %s", d.Name)
		}
		names = append(names, d.Name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n + "\x00" + dataset2prompt[n] + "\x00"))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != "f1cf70a1cf49536bdd9f4fbbe634828eab15c7e932daeabca5128c75f49dbc0f" {
		t.Errorf("templates hash %s: a template differs from LongBench/config/dataset2prompt.json", got)
	}
	for name, want := range map[string]string{
		"narrativeqa":   "Answer the question asconcisely as you can",
		"qasper":        "\n\n Answer the question based on the above article",
		"multi_news":    "summary of all news. \n\nNews:\n",
		"passage_count": "The final answer is: ",
	} {
		if !strings.Contains(dataset2prompt[name], want) {
			t.Errorf("%s template lost its quirk %q", name, want)
		}
	}
}

func TestBuildPrompt(t *testing.T) {
	s := func(v string) *string { return &v }
	rec := Record{Context: s("Question: Who?\nType: Individual"), Input: s("Question: Where?\nType:")}
	got, err := BuildPrompt("trec", rec)
	want := "Please determine the type of the question below. Here are some examples of questions.\n\n" +
		"Question: Who?\nType: Individual\nQuestion: Where?\nType:"
	if err != nil || got != want {
		t.Errorf("trec prompt = %q, %v\nwant %q", got, err, want)
	}
	code := Record{Context: s("# a.py\ndef f():\n"), Input: s("    return {x}\n")}
	got, err = BuildPrompt("repobench-p_e", code)
	want = "Please complete the code given below. \n# a.py\ndef f():\n    return {x}\nNext line of code:\n"
	if err != nil || got != want {
		t.Errorf("repobench-p prompt = %q, %v\nwant %q", got, err, want)
	}
	got, err = BuildPrompt("passage_count", Record{Context: s("P1\n\nP2"), Input: s("")})
	if err != nil || !strings.HasPrefix(got, "There are some paragraphs below") ||
		!strings.HasSuffix(got, "?\n\nP1\n\nP2\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ") {
		t.Errorf("passage_count prompt = %q, %v", got, err)
	}
	// lcc has no {input}: a record without one is fine there, not for trec.
	if _, err := BuildPrompt("lcc", Record{Context: s("x = 1\n")}); err != nil {
		t.Errorf("lcc without input: %v", err)
	}
	if _, err := BuildPrompt("trec", Record{Context: s("c")}); err == nil || !strings.Contains(err.Error(), `"input"`) {
		t.Errorf("trec without input: %v", err)
	}
	if _, err := BuildPrompt("nq", rec); err == nil {
		t.Error("unknown data set: no error")
	}
}

func TestChatTemplate(t *testing.T) {
	raw := map[string]bool{"trec": true, "triviaqa": true, "samsum": true, "lsht": true, "lcc": true, "repobench-p": true}
	n := 0
	for _, d := range Datasets {
		if ChatTemplate(d.Name) == raw[d.Name] {
			t.Errorf("ChatTemplate(%s) = %v", d.Name, ChatTemplate(d.Name))
		}
		if ChatTemplate(d.Name) {
			n++
		}
	}
	if n != 15 || ChatTemplate("samsum_e") || !ChatTemplate("qasper_e") || ChatTemplate("nq") {
		t.Errorf("%d chat data sets, want 15 (or an _e key is wrong)", n)
	}
}
