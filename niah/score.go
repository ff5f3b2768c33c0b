package niah

import (
	"fmt"
	"strings"
)

// Scorers of the model-level test. Each maps (answer, pass key) to a score
// in [0, 1]; a cell of the grid is the mean over its samples.
//
//   - passkey (the default; OpenDSA's rule): 1 if the first run of ASCII
//     digits in the answer equals the key, else 0. "The pass key is
//     12345." scores 1; "1234 5" or "012345" score 0; an answer without
//     digits scores 0.
//   - rouge1: ROUGE-1 F1 between the answer and the needle sentence
//     ("The pass key is K. Remember it. K is the pass key."). Both are
//     lowercased and split on white space (strings.Fields) with no other
//     normalisation: no stemming, no stop words, punctuation stays on its
//     word ("12345." and "12345" differ). Overlap counts words with
//     multiplicity (min of the two counts); P = overlap/|answer|,
//     R = overlap/|needle|, F = 2PR/(P+R), and 0 when the overlap or
//     either side is empty. It is not the rouge_score package's number
//     (that one tokenises on [a-z0-9]+ and may stem) and, like any of
//     these, not a GPT-judge 1–10 score.
//   - substring: 1 if the key's digits appear anywhere in the answer
//     (strings.Contains), else 0.
const (
	modelScorerPasskey   = "passkey"
	modelScorerRouge1    = "rouge1"
	modelScorerSubstring = "substring"
)

// ModelScorers lists the scorer names RunModel accepts, the default first.
func ModelScorers() []string {
	return []string{modelScorerPasskey, modelScorerRouge1, modelScorerSubstring}
}

// modelCheckScorer validates a scorer name ("" is the default).
func modelCheckScorer(name string) (string, error) {
	if name == "" {
		return modelScorerPasskey, nil
	}
	for _, s := range ModelScorers() {
		if name == s {
			return s, nil
		}
	}
	return "", fmt.Errorf("%w: unknown scorer %q (one of %s)", ErrModelOptions, name, strings.Join(ModelScorers(), ", "))
}

// modelScore scores answer against key with a valid scorer.
func modelScore(scorer, answer, key string) float64 {
	switch scorer {
	case modelScorerRouge1:
		return modelRouge1(answer, modelNeedle(key))
	case modelScorerSubstring:
		if strings.Contains(answer, key) {
			return 1
		}
		return 0
	default:
		if modelFirstDigits(answer) == key {
			return 1
		}
		return 0
	}
}

// modelFirstDigits is the first maximal run of ASCII digits in s, or "".
func modelFirstDigits(s string) string {
	start := strings.IndexAny(s, "0123456789")
	if start < 0 {
		return ""
	}
	end := start
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	return s[start:end]
}

// modelRouge1 is the ROUGE-1 F1 of candidate against reference, on
// lowercased white-space tokens.
func modelRouge1(candidate, reference string) float64 {
	c := strings.Fields(strings.ToLower(candidate))
	r := strings.Fields(strings.ToLower(reference))
	if len(c) == 0 || len(r) == 0 {
		return 0
	}
	counts := make(map[string]int, len(r))
	for _, w := range r {
		counts[w]++
	}
	overlap := 0
	for _, w := range c {
		if counts[w] > 0 {
			counts[w]--
			overlap++
		}
	}
	if overlap == 0 {
		return 0
	}
	p := float64(overlap) / float64(len(c))
	rc := float64(overlap) / float64(len(r))
	return 2 * p * rc / (p + rc)
}
