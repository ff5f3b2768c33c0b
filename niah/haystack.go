package niah

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/misabench/misabench/serving"
)

// The haystack, the needle and the prompt of the model-level test
// (research/evals.md part B).
//
// Haystack: either the *.txt files of a directory, read in name order and
// concatenated with nothing in between (as gkamradt's read_context_files,
// but sorted rather than in glob order), repeated until the text has at
// least as many tokens as the largest context; or a built-in filler of
// neutral generated sentences, deterministic by seed, with no digits and
// no words of the needle's ("pass", "key"), so that the answer's digits
// can only come from the needle.
//
// Needle: " The pass key is K. Remember it. K is the pass key." with K five
// random digits, a function of (seed, context, depth, sample). The leading
// space makes it a separate sentence after the period it follows.
//
// Insertion (gkamradt's insert_needle, in tokens of the server's
// tokenizer): the haystack's first B tokens are kept, B = ctx − the tokens
// of the prompt with the needle and no haystack (template, question,
// special tokens); p = int(B·depth); depth 1 appends the needle at the
// end; otherwise p walks back until the token before it is a sentence end
// (or p = 0); the needle's tokens go in at p and the whole is detokenized.
// The prompt is then counted with the server's tokenizer and B shrunk by
// the excess if token merges at the seams pushed it over ctx.
//
// Sentence-end tokens: the ids of tokenize(".") (gkamradt's rule) plus the
// last id of tokenize("a.") when it decodes to "." alone. The second is the
// period inside text for SentencePiece tokenizers, whose lone "." is "▁."
// (FranxYao hard-codes both, e.g. LLaMA's 29889 and 869); for byte-level
// BPE tokenizers both are the same id. A period merged into another token
// (".\n", ".\"") is not a sentence end, as in gkamradt's code.

// Prompt text. The preamble follows the passkey-retrieval prompt of the
// landmark-attention and LongLoRA evaluations in spirit; the question is
// the brief's. The system message (chat only) is gkamradt's.
const (
	modelPreamble = "There is a pass key hidden inside a lot of irrelevant text. " +
		"Find it and remember it. I will ask you what the pass key is.\n\n"
	modelQuestion = "What is the pass key? The pass key is"
	modelSystem   = "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
)

// modelNeedle is the needle sentence for key (without the leading space).
func modelNeedle(key string) string {
	return "The pass key is " + key + ". Remember it. " + key + " is the pass key."
}

// modelUserText is the completion prompt, or the chat user message, around
// a haystack that already holds the needle.
func modelUserText(haystack string) string {
	return modelPreamble + haystack + "\n\n" + modelQuestion
}

// modelChatMessages is the chat form of the prompt.
func modelChatMessages(haystack string) []serving.Message {
	return []serving.Message{
		{Role: "system", Content: modelSystem},
		{Role: "user", Content: modelUserText(haystack)},
	}
}

// modelMix is splitmix64's finaliser.
func modelMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// modelKey is the pass key of one sample: five digits, 10000–99999, a
// function of the seed and the sample's place in the grid only.
func modelKey(seed uint64, ctx int, depth float64, sample int) string {
	h := modelMix(seed ^ 0x6d6f64656c6e6961) // "modelnia"
	h = modelMix(h ^ uint64(ctx))
	h = modelMix(h ^ math.Float64bits(modelDepth(depth)))
	h = modelMix(h ^ uint64(sample))
	return strconv.Itoa(10000 + int(h%90000))
}

// modelDepth folds −0 into 0 so that depths compare by bits.
func modelDepth(d float64) float64 {
	if d == 0 {
		return 0
	}
	return d
}

// modelInsert returns body with needle inserted at the depth fraction,
// backed off to a sentence boundary, and the insertion index in body.
func modelInsert(body, needle []int, depth float64, period map[int]bool) ([]int, int) {
	p := len(body)
	if depth < 1 {
		p = int(float64(len(body)) * depth)
		for p > 0 && !period[body[p-1]] {
			p--
		}
	}
	out := make([]int, 0, len(body)+len(needle))
	out = append(out, body[:p]...)
	out = append(out, needle...)
	return append(out, body[p:]...), p
}

// modelMaxGap is the longest run of tokens of ids without a period token,
// and whether there is any period at all.
func modelMaxGap(ids []int, period map[int]bool) (gap int, found bool) {
	run := 0
	for _, id := range ids {
		if period[id] {
			found = true
			gap = max(gap, run)
			run = 0
			continue
		}
		run++
	}
	return max(gap, run), found
}

// Filler vocabulary: plain, neutral words; no digits, no "pass", no "key".
var (
	modelFillNouns = []string{"lamp", "bench", "window", "river", "garden", "kettle", "bridge", "meadow",
		"cart", "basket", "ladder", "lantern", "path", "fence", "orchard", "boat", "clock", "tower",
		"field", "shelf", "curtain", "well", "barn", "stone wall", "hedge", "pond"}
	modelFillAdjs = []string{"quiet", "old", "small", "bright", "narrow", "green", "wooden", "gentle",
		"distant", "pale", "round", "tall", "dusty", "painted", "crooked", "sturdy"}
	modelFillVerbs = []string{"rests", "waits", "leans", "glows", "stands", "settles", "turns", "stays",
		"hums", "sleeps", "sways", "shines", "lingers", "creaks"}
	modelFillPreps  = []string{"beside", "under", "near", "behind", "along", "across", "above", "inside", "past", "below"}
	modelFillPlaces = []string{"village", "harbor", "valley", "market", "station", "library", "courtyard",
		"forest", "hill", "square", "mill", "chapel", "farmhouse", "riverbank"}
	modelFillTimes = []string{"In the morning", "At dusk", "Later that day", "Every spring", "On calm evenings",
		"Before the rain", "After the harvest", "In late autumn", "At noon", "During the winter"}
	modelFillPeople = []string{"travelers", "farmers", "children", "neighbors", "painters", "fishermen",
		"students", "gardeners", "walkers", "bakers"}
	modelFillPluralVerbs = []string{"visit", "watch", "describe", "admire", "repair", "clean", "notice",
		"sketch", "remember", "talk about"}
	modelFillWeather = []string{"the wind is calm", "the sky is gray", "the air is warm", "snow is falling",
		"the sun is low", "clouds gather", "the fog lifts", "rain taps on the roofs"}
	modelFillAdvs = []string{"slowly", "quietly", "without a sound", "all afternoon", "every day",
		"in the pale light", "as it always has"}
	modelFillStates = []string{"calm", "busy", "empty", "warm", "cold", "silent", "crowded", "still"}
)

// modelFillerSentence writes one sentence drawn from r.
func modelFillerSentence(r *rand.Rand) string {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	switch r.IntN(8) {
	case 0:
		return "The " + pick(modelFillAdjs) + " " + pick(modelFillNouns) + " " + pick(modelFillVerbs) + " " +
			pick(modelFillPreps) + " the " + pick(modelFillNouns) + "."
	case 1:
		return pick(modelFillTimes) + ", the " + pick(modelFillNouns) + " " + pick(modelFillVerbs) + " " +
			pick(modelFillPreps) + " the " + pick(modelFillPlaces) + "."
	case 2:
		s := "A " + pick(modelFillAdjs) + " " + pick(modelFillNouns) + " was seen " + pick(modelFillPreps) +
			" the " + pick(modelFillPlaces) + " "
		t := pick(modelFillTimes)
		return s + strings.ToLower(t[:1]) + t[1:] + "."
	case 3:
		return "Many " + pick(modelFillPeople) + " " + pick(modelFillPluralVerbs) + " the " + pick(modelFillNouns) +
			" " + pick(modelFillPreps) + " the " + pick(modelFillPlaces) + "."
	case 4:
		return "It is said that the " + pick(modelFillNouns) + " " + pick(modelFillVerbs) + " " + pick(modelFillAdvs) + "."
	case 5:
		return "Nobody in the " + pick(modelFillPlaces) + " forgets the " + pick(modelFillAdjs) + " " + pick(modelFillNouns) + "."
	case 6:
		p := pick(modelFillPeople)
		return strings.ToUpper(p[:1]) + p[1:] + " often " + pick(modelFillPluralVerbs) + " the " + pick(modelFillPlaces) +
			" when " + pick(modelFillWeather) + "."
	default:
		return "The " + pick(modelFillPlaces) + " was " + pick(modelFillStates) + " and the " + pick(modelFillNouns) +
			" was " + pick(modelFillStates) + "."
	}
}

// modelFiller is the built-in haystack: paragraphs of four to eight
// sentences, separated by blank lines, until the text has at least
// minChars bytes. It depends on seed only, and a longer text extends a
// shorter one (whole paragraphs are drawn from one stream).
func modelFiller(seed uint64, minChars int) string {
	r := rand.New(rand.NewPCG(seed, 0x66696c6c6572)) // "filler"
	var b strings.Builder
	b.Grow(minChars + 1024)
	for b.Len() < minChars {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		n := 4 + r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(modelFillerSentence(r))
		}
	}
	return b.String()
}

// modelFillerFingerprint names the built-in haystack of a seed.
func modelFillerFingerprint(seed uint64) string {
	return "builtin-filler/v1:seed=" + strconv.FormatUint(seed, 10)
}

// modelReadHaystackDir reads the *.txt files of dir (not its
// subdirectories) in name order and concatenates them. fingerprint is a
// hash of the names and contents; files is their number.
func modelReadHaystackDir(dir string) (text, fingerprint string, files int, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", "", 0, fmt.Errorf("%w: haystack: %v", ErrModelOptions, err)
	}
	if !st.IsDir() {
		return "", "", 0, fmt.Errorf("%w: haystack %s is not a directory", ErrModelOptions, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", "", 0, fmt.Errorf("%w: haystack: %v", ErrModelOptions, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".txt") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", "", 0, fmt.Errorf("%w: haystack directory %s has no .txt files", ErrModelOptions, dir)
	}
	h := sha256.New()
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", "", 0, fmt.Errorf("%w: haystack: %v", ErrModelOptions, err)
		}
		if !utf8.Valid(data) {
			return "", "", 0, fmt.Errorf("%w: haystack file %s is not UTF-8 text", ErrModelOptions, filepath.Join(dir, n))
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(data))
		h.Write(data)
		b.Write(data)
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", "", 0, fmt.Errorf("%w: the .txt files of haystack directory %s are empty", ErrModelOptions, dir)
	}
	return b.String(), "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], len(names), nil
}

// modelClipText cuts s to at most n bytes at a rune boundary.
func modelClipText(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
