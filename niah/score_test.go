package niah

import (
	"math"
	"slices"
	"testing"
)

func TestModelScorers(t *testing.T) {
	if got := ModelScorers(); !slices.Equal(got, []string{"passkey", "rouge1", "substring"}) {
		t.Fatalf("ModelScorers() = %v", got)
	}
	const key = "12345"
	cases := []struct {
		scorer, answer string
		want           float64
	}{
		// passkey: the first run of digits must be the key.
		{"passkey", "The pass key is 12345.", 1},
		{"passkey", " 12345", 1},
		{"passkey", "key:12345abc", 1},
		{"passkey", "The key is 1234 5", 0}, // first run is 1234
		{"passkey", "012345", 0},
		{"passkey", "123456", 0},
		{"passkey", "I think 99 or 12345", 0},
		{"passkey", "no digits here", 0},
		{"passkey", "", 0},
		// substring: the key anywhere.
		{"substring", "I think 99 or 12345", 1},
		{"substring", "123456", 1},
		{"substring", "1234 5", 0},
		{"substring", "", 0},
		// rouge1 against "The pass key is 12345. Remember it. 12345 is
		// the pass key." = the pass key is 12345. remember it. 12345 is
		// the pass key. (12 words).
		{"rouge1", modelNeedle(key), 1},
		{"rouge1", "12345", 2.0 / 13},                   // P 1, R 1/12
		{"rouge1", "The pass key is 12345.", 10.0 / 17}, // P 1, R 5/12
		{"rouge1", "the the the the", 0.25},             // overlap 2 (clipped): P 1/2, R 1/6
		{"rouge1", "THE PASS", 2.0 / 7},                 // P 1, R 1/6
		{"rouge1", "nothing here", 0},
		{"rouge1", "", 0},
	}
	for _, c := range cases {
		if got := modelScore(c.scorer, c.answer, key); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s(%q) = %v, want %v", c.scorer, c.answer, got, c.want)
		}
	}
	for _, name := range []string{"", "passkey", "rouge1", "substring"} {
		if _, err := modelCheckScorer(name); err != nil {
			t.Errorf("scorer %q: %v", name, err)
		}
	}
	if s, _ := modelCheckScorer(""); s != "passkey" {
		t.Errorf("default scorer %q", s)
	}
	if _, err := modelCheckScorer("gpt-judge"); err == nil {
		t.Error("unknown scorer accepted")
	}
}
