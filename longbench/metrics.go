package longbench

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MetricFunc is one function of metrics.py: (prediction, ground_truth,
// all_classes) → score in [0, 1]. An error is what would make eval.py
// crash (e.g. retrieval_score on a ground truth without "Paragraph N").
type MetricFunc func(pred, truth string, allClasses []string) (float64, error)

// ErrNoJieba is returned by the Chinese metrics while no segmenter is set.
var ErrNoJieba = errors.New("longbench: Chinese scoring needs a jieba segmenter, and none is loaded")

// Segmenter cuts text the way jieba.cut(s, cut_all=False) does (accurate
// mode, HMM on; §A.4 qa_f1_zh_score).
type Segmenter interface {
	Cut(s string) []string
}

// Metrics holds the metric options.
type Metrics struct {
	// Jieba segments Chinese text; nil makes the Chinese metrics return
	// ErrNoJieba.
	Jieba Segmenter
	// RougeIterative scores every sentence pair with the iterative LCS
	// backtrack. False (the default) reproduces pltrdy/rouge 1.0.1, whose
	// recursive backtrack raises RecursionError on long sentence pairs, which
	// LongBench's bare except turns into 0 (§A.4 rouge_score, §A.5).
	RougeIterative bool
	// FuzzLevenshtein scores code_sim_score with python-Levenshtein's ratio,
	// which fuzzywuzzy's fuzz.ratio uses when that package is installed;
	// false (the default) is difflib's SequenceMatcher, which it falls back
	// to otherwise (LongBench/requirements.txt does not install it; §A.4).
	FuzzLevenshtein bool
	// Python310 moves the RecursionError boundary of pltrdy/rouge's
	// backtrack one frame lower, as CPython 3.10 and older have it (they
	// raise at one frame fewer than 3.11 and later, on which the default is
	// checked; measured with eval.py's scorer on CPython 3.8 to 3.13).
	Python310 bool
}

// Func returns the metric function of a dataset2metric name.
func (m *Metrics) Func(name string) (MetricFunc, error) {
	switch name {
	case "qa_f1_score":
		return wrap(QAF1), nil
	case "qa_f1_zh_score":
		return m.QAF1ZH, nil
	case "rouge_score":
		return func(p, t string, _ []string) (float64, error) { return m.rouge(p, t, 0), nil }, nil
	case "rouge_zh_score":
		return m.RougeZH, nil
	case "classification_score":
		return func(p, t string, c []string) (float64, error) { return Classification(p, t, c), nil }, nil
	case "retrieval_score":
		return func(p, t string, _ []string) (float64, error) { return Retrieval(p, t) }, nil
	case "retrieval_zh_score":
		return func(p, t string, _ []string) (float64, error) { return RetrievalZH(p, t) }, nil
	case "count_score":
		return wrap(Count), nil
	case "code_sim_score":
		if m.FuzzLevenshtein {
			return wrap(CodeSimLevenshtein), nil
		}
		return wrap(CodeSim), nil
	}
	return nil, fmt.Errorf("unknown metric %q", name)
}

func wrap(f func(p, t string) float64) MetricFunc {
	return func(p, t string, _ []string) (float64, error) { return f(p, t), nil }
}

// pyIsSpace is Python's str.isspace as str.split() uses it: Go's
// unicode.IsSpace plus U+001C..U+001F (§A.5).
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pySplit is Python's str.split() with no argument.
func pySplit(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// pyLower is Python's str.lower(): Go's simple case mapping plus the one
// unconditional multi-rune mapping (U+0130 → "i̇") and the Final_Sigma rule
// (Σ → ς at the end of a word, σ elsewhere; CPython's handle_capital_sigma).
// Go's strings.ToLower always gives σ, which made "ΟΔΥΣΣΕΥΣ" miss the
// answer "Οδυσσευς" in qa_f1_score (found by tools/longbench/check_official.py).
func pyLower(s string) string {
	if !strings.ContainsRune(s, 'İ') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is CPython's Final_Sigma test for the Σ at rs[i]: a cased
// character before it and none after it, skipping case-ignorable ones
// (\p{cased}\p{case-ignorable}*Σ!(\p{case-ignorable}*\p{cased})).
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !isCased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && isCaseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !isCased(rs[j])
}

// isCased is Unicode's Cased property: Lowercase, Uppercase or Lt.
func isCased(r rune) bool {
	return unicode.In(r, unicode.Ll, unicode.Lu, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable is Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk,
// and the Word_Break classes MidLetter, MidNumLet and Single_Quote.
func isCaseIgnorable(r rune) bool {
	switch r {
	case ':', '\u00b7', '\u0387', '\u055f', '\u05f4', '\u2027', '\ufe13', '\ufe55', '\uff1a', // MidLetter
		'.', '\u2018', '\u2019', '\u2024', '\ufe52', '\uff07', '\uff0e', // MidNumLet
		'\'': // Single_Quote
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// asciiPunct is Python's string.punctuation.
const asciiPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// pyIsWord is Python re's \w for str patterns: alphanumerics (any letter or
// number category) and '_'.
func pyIsWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

// removeArticles is re.sub(r"\b(a|an|the)\b", " ", text) with Python's
// Unicode \b: a match must start and end at a word boundary, so it is a
// whole maximal run of word characters equal to a, an or the. (Go's regexp
// \b is ASCII-only, hence this hand-written scan.)
func removeArticles(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !pyIsWord(r) {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		j := i
		for j < len(s) {
			r2, n2 := utf8.DecodeRuneInString(s[j:])
			if !pyIsWord(r2) {
				break
			}
			j += n2
		}
		w := s[i:j]
		if w == "a" || w == "an" || w == "the" {
			b.WriteByte(' ')
		} else {
			b.WriteString(w)
		}
		i = j
	}
	return b.String()
}

// NormalizeAnswer is normalize_answer (§A.4): lower → drop ASCII
// punctuation → articles to " " → collapse whitespace.
func NormalizeAnswer(s string) string {
	s = pyLower(s)
	s = strings.Map(func(r rune) rune {
		if r < 128 && strings.ContainsRune(asciiPunct, r) {
			return -1
		}
		return r
	}, s)
	s = removeArticles(s)
	return strings.Join(pySplit(s), " ")
}

// zhPunct is the CJK/full-width list of normalize_zh_answer (§A.4).
const zhPunct = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."

// NormalizeZHAnswer is normalize_zh_answer (§A.4): lower → drop ASCII and
// CJK punctuation → remove all whitespace.
func NormalizeZHAnswer(s string) string {
	s = pyLower(s)
	s = strings.Map(func(r rune) rune {
		if (r < 128 && strings.ContainsRune(asciiPunct, r)) || strings.ContainsRune(zhPunct, r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(pySplit(s), "")
}

// F1 is f1_score (§A.4): multiset overlap of the two token lists.
func F1(pred, truth []string) float64 {
	counts := make(map[string]int, len(truth))
	for _, t := range truth {
		counts[t]++
	}
	same := 0
	for _, p := range pred {
		if counts[p] > 0 {
			counts[p]--
			same++
		}
	}
	if same == 0 {
		return 0
	}
	precision := 1.0 * float64(same) / float64(len(pred))
	recall := 1.0 * float64(same) / float64(len(truth))
	return (2 * precision * recall) / (precision + recall)
}

// QAF1 is qa_f1_score (§A.4).
func QAF1(pred, truth string) float64 {
	return F1(pySplit(NormalizeAnswer(pred)), pySplit(NormalizeAnswer(truth)))
}

// QAF1ZH is qa_f1_zh_score (§A.4): jieba-cut the raw strings, normalise
// each token, drop empty ones, F1.
func (m *Metrics) QAF1ZH(pred, truth string, _ []string) (float64, error) {
	if m.Jieba == nil {
		return 0, ErrNoJieba
	}
	tok := func(s string) []string {
		var out []string
		for _, t := range m.Jieba.Cut(s) {
			if t = NormalizeZHAnswer(t); t != "" {
				out = append(out, t)
			}
		}
		return out
	}
	return F1(tok(pred), tok(truth)), nil
}

// RougeZH is rouge_zh_score (§A.4): " ".join(jieba.cut(x)) on both, then
// rouge_score (one Python frame deeper, which matters for the recursion limit).
func (m *Metrics) RougeZH(pred, truth string, _ []string) (float64, error) {
	if m.Jieba == nil {
		return 0, ErrNoJieba
	}
	return m.rouge(strings.Join(m.Jieba.Cut(pred), " "), strings.Join(m.Jieba.Cut(truth), " "), 1), nil
}

// Rouge is rouge_score with the default (pltrdy 1.0.1) behaviour.
func Rouge(pred, truth string) float64 { return (&Metrics{}).rouge(pred, truth, 0) }

// rougeSentences is pltrdy's split (§A.4): split on ASCII '.', drop
// zero-length pieces (before whitespace normalisation), normalise each kept
// piece's whitespace. A whitespace-only piece becomes "" and stays.
func rougeSentences(s string) [][]string {
	var out [][]string
	for _, p := range strings.Split(s, ".") {
		if len(p) == 0 {
			continue
		}
		out = append(out, strings.Split(strings.Join(pySplit(p), " "), " "))
	}
	return out
}

// Python call depth when pltrdy's _recon is first entered from eval.py's
// rouge_score: <module>, scorer, rouge_score, Rouge.get_scores,
// _get_avg_scores, the AVAILABLE_METRICS lambda, rouge_l_summary_level,
// _union_lcs, _recon_lcs (9 frames); rouge_zh_score adds one. CPython's
// default recursion limit is 1000 frames. (inference from the pltrdy 1.0.1
// and eval.py call chains; checked with the official eval.py on CPython
// 3.11 to 3.13, where a backtrack of 990 frames (k+3 for a hypothesis whose
// k words after a shared first one occur in no reference) passes and 991
// raises; CPython 3.8 to 3.10 raise one frame earlier: Metrics.Python310.)
const (
	pyRecursionLimit = 1000
	rougeBaseDepth   = 9
)

// errRecursion stands for Python's RecursionError.
var errRecursion = errors.New("RecursionError")

// rouge is rouge_score: pltrdy's summary-level ROUGE-L F with exclusive
// (set) semantics; every error case (empty hypothesis or reference,
// recursion depth) scores 0, as LongBench's bare except does (§A.4).
// extraDepth is the number of Python frames above rouge_score's usual depth.
func (m *Metrics) rouge(hyp, ref string, extraDepth int) float64 {
	h, r := rougeSentences(hyp), rougeSentences(ref)
	if len(h) == 0 || len(r) == 0 {
		return 0 // ValueError("Hypothesis is empty." / "Reference is empty.")
	}
	maxFrames := 0
	if !m.RougeIterative {
		maxFrames = pyRecursionLimit - rougeBaseDepth - extraDepth
		if m.Python310 {
			maxFrames--
		}
	}
	f, err := rougeLSummary(h, r, maxFrames)
	if err != nil {
		return 0
	}
	return f
}

func distinct(sents [][]string) int {
	set := map[string]struct{}{}
	for _, s := range sents {
		for _, w := range s {
			set[w] = struct{}{}
		}
	}
	return len(set)
}

// rougeLSummary is rouge_l_summary_level(hyp, ref, exclusive=True).
// maxFrames > 0 limits the _recon recursion depth as Python does.
func rougeLSummary(hyp, ref [][]string, maxFrames int) (float64, error) {
	m := distinct(ref)
	n := distinct(hyp)
	union := map[string]struct{}{}
	llcs := 0
	for _, rs := range ref {
		prev := len(union)
		for _, hs := range hyp {
			words, err := reconLCS(rs, hs, maxFrames)
			if err != nil {
				return 0, err
			}
			for _, w := range words {
				union[w] = struct{}{}
			}
		}
		llcs += len(union) - prev
	}
	rLCS := float64(llcs) / float64(m)
	pLCS := float64(llcs) / float64(n)
	return 2.0 * ((pLCS * rLCS) / (pLCS + rLCS + 1e-8)), nil
}

// reconLCS is pltrdy's _recon_lcs(x, y): the LCS table, then the backtrack
// from (len x, len y): equal words → diagonal; else up if table[i-1][j] >
// table[i][j-1] strictly, else left. It is written as a loop and returns
// the same words as the recursive original; the only difference is that
// the original raises RecursionError once the chain of _recon calls
// (steps + 1 for the terminating call) passes the frame budget, which this
// reproduces when maxFrames > 0.
func reconLCS(x, y []string, maxFrames int) ([]string, error) {
	nx, ny := len(x), len(y)
	w := ny + 1
	table := make([]int32, (nx+1)*w)
	for i := 1; i <= nx; i++ {
		for j := 1; j <= ny; j++ {
			if x[i-1] == y[j-1] {
				table[i*w+j] = table[(i-1)*w+j-1] + 1
			} else {
				table[i*w+j] = max(table[(i-1)*w+j], table[i*w+j-1])
			}
		}
	}
	var out []string
	i, j, frames := nx, ny, 1
	for i > 0 && j > 0 {
		switch {
		case x[i-1] == y[j-1]:
			out = append(out, x[i-1])
			i, j = i-1, j-1
		case table[(i-1)*w+j] > table[i*w+j-1]:
			i--
		default:
			j--
		}
		frames++
	}
	if maxFrames > 0 && frames > maxFrames {
		return nil, errRecursion
	}
	return out, nil
}

// Classification is classification_score (§A.4) with its list-mutation
// quirk: list.remove while iterating skips the element after each removed
// one, and remove drops the first equal element, not necessarily the
// current one.
func Classification(pred, truth string, allClasses []string) float64 {
	var list []string
	for _, c := range allClasses {
		if strings.Contains(pred, c) {
			list = append(list, c)
		}
	}
	for idx := 0; idx < len(list); {
		term := list[idx]
		idx++
		if strings.Contains(truth, term) && term != truth {
			for k, v := range list {
				if v == term {
					list = append(list[:k:k], list[k+1:]...)
					break
				}
			}
		}
	}
	for _, v := range list {
		if v == truth {
			return 1.0 / float64(len(list))
		}
	}
	return 0
}

// Python's \d on str is any Unicode decimal digit (§A.4).
var (
	digitsRE      = regexp.MustCompile(`\p{Nd}+`)
	paragraphRE   = regexp.MustCompile(`Paragraph (\p{Nd}+)`)
	paragraphZHRE = regexp.MustCompile(`段落(\p{Nd}+)`)
)

func countMatches(pred, target string) float64 {
	nums := digitsRE.FindAllString(pred, -1)
	if len(nums) == 0 {
		return 0
	}
	right := 0
	for _, n := range nums {
		if n == target {
			right++
		}
	}
	return float64(right) / float64(len(nums))
}

// Retrieval is retrieval_score (§A.4). A ground truth without
// "Paragraph N" is an error (eval.py dies with IndexError).
func Retrieval(pred, truth string) (float64, error) {
	m := paragraphRE.FindStringSubmatch(truth)
	if m == nil {
		return 0, fmt.Errorf("retrieval_score: no \"Paragraph N\" in ground truth %q", truth)
	}
	return countMatches(pred, m[1]), nil
}

// RetrievalZH is retrieval_zh_score (§A.4): like Retrieval with 段落N.
// It needs no segmentation.
func RetrievalZH(pred, truth string) (float64, error) {
	m := paragraphZHRE.FindStringSubmatch(truth)
	if m == nil {
		return 0, fmt.Errorf("retrieval_zh_score: no \"段落N\" in ground truth %q", truth)
	}
	return countMatches(pred, m[1]), nil
}

// Count is count_score (§A.4): digit runs compared as strings.
func Count(pred, truth string) float64 { return countMatches(pred, truth) }

// CodeSim is code_sim_score (§A.4): the first line of pred.lstrip('\n')
// containing none of ` # // (else ""), then fuzz.ratio/100 (difflib).
func CodeSim(pred, truth string) float64 { return codeSim(pred, truth, SequenceRatio) }

// CodeSimLevenshtein is code_sim_score with fuzz.ratio on python-Levenshtein.
func CodeSimLevenshtein(pred, truth string) float64 {
	return codeSim(pred, truth, LevenshteinRatio)
}

func codeSim(pred, truth string, ratio func(a, b []rune) float64) float64 {
	line := ""
	for _, l := range strings.Split(strings.TrimLeft(pred, "\n"), "\n") {
		if !strings.Contains(l, "`") && !strings.Contains(l, "#") && !strings.Contains(l, "//") {
			line = l
			break
		}
	}
	return float64(fuzzRatio(line, truth, ratio)) / 100
}

// FuzzRatio is fuzzywuzzy 0.18.0 fuzz.ratio with the difflib backend
// (§A.4): 100 if equal (so "" vs "" is 100), 0 if either is empty, else
// int(round(100 * SequenceMatcher(None, s1, s2).ratio())) with Python's
// round-half-even.
func FuzzRatio(s1, s2 string) int { return fuzzRatio(s1, s2, SequenceRatio) }

func fuzzRatio(s1, s2 string, ratio func(a, b []rune) float64) int {
	if s1 == s2 {
		return 100
	}
	if s1 == "" || s2 == "" {
		return 0
	}
	return int(math.RoundToEven(100 * ratio([]rune(s1), []rune(s2))))
}

// LevenshteinRatio is python-Levenshtein's ratio(a, b) (0.12), the ratio of
// fuzzywuzzy's StringMatcher: (lensum - d) / lensum, d the edit distance
// with substitutions costing 2, i.e. lensum - 2·LCS; 1 for two empty strings.
func LevenshteinRatio(a, b []rune) float64 {
	lensum := len(a) + len(b)
	if lensum == 0 {
		return 1.0
	}
	if len(b) > len(a) {
		a, b = b, a
	}
	row := make([]int, len(b)+1)
	for i := range a {
		diag := 0
		for j := range b {
			up := row[j+1]
			switch {
			case a[i] == b[j]:
				row[j+1] = diag + 1
			case row[j] > up:
				row[j+1] = row[j]
			}
			diag = up
		}
	}
	d := lensum - 2*row[len(b)]
	return float64(lensum-d) / float64(lensum)
}

// SequenceRatio is difflib.SequenceMatcher(None, a, b).ratio() with the
// default autojunk=True, on code points.
func SequenceRatio(a, b []rune) float64 {
	total := len(a) + len(b)
	if total == 0 {
		return 1.0
	}
	return 2.0 * float64(matchingSum(a, b)) / float64(total)
}

// matchingSum is sum(size for _, _, size in get_matching_blocks()).
func matchingSum(a, b []rune) int {
	// __chain_b: index b; with n >= 200, drop "popular" elements (more
	// than n//100 + 1 occurrences). isjunk is None, so bjunk is empty.
	b2j := map[rune][]int{}
	for i, r := range b {
		b2j[r] = append(b2j[r], i)
	}
	if n := len(b); n >= 200 {
		ntest := n/100 + 1
		for r, idx := range b2j {
			if len(idx) > ntest {
				delete(b2j, r)
			}
		}
	}
	type span struct{ alo, ahi, blo, bhi int }
	queue := []span{{0, len(a), 0, len(b)}}
	sum := 0
	for len(queue) > 0 {
		q := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, j, k := findLongestMatch(a, b, b2j, q.alo, q.ahi, q.blo, q.bhi)
		if k > 0 {
			sum += k
			if q.alo < i && q.blo < j {
				queue = append(queue, span{q.alo, i, q.blo, j})
			}
			if i+k < q.ahi && j+k < q.bhi {
				queue = append(queue, span{i + k, q.ahi, j + k, q.bhi})
			}
		}
	}
	return sum
}

// findLongestMatch is difflib's find_longest_match with an empty bjunk (so
// only its first pair of extension loops can do anything; they extend over
// popular elements too).
func findLongestMatch(a, b []rune, b2j map[rune][]int, alo, ahi, blo, bhi int) (int, int, int) {
	besti, bestj, bestsize := alo, blo, 0
	j2len := map[int]int{}
	for i := alo; i < ahi; i++ {
		newj2len := map[int]int{}
		for _, j := range b2j[a[i]] {
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := j2len[j-1] + 1
			newj2len[j] = k
			if k > bestsize {
				besti, bestj, bestsize = i-k+1, j-k+1, k
			}
		}
		j2len = newj2len
	}
	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}

// PyRound2 is Python's round(x, 2) on a float: the correctly rounded
// 2-decimal value of x's exact binary value, ties to even (§A.3, §A.5).
// strconv formats correctly rounded with ties to even, as CPython's dtoa does.
func PyRound2(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	return v
}

// NPRound2 is round(np.float64(x), 2) as scorer_e applies it to
// 100 * np.mean(bucket) (§A.3): numpy scalars' __round__ is np.round
// (numpy issue #11810, PR #15840), i.e. rint(x * 100) / 100, which differs
// from PyRound2 on values like 2.675 (2.68, not 2.67). Not stated in
// evals.md; from numpy's sources.
func NPRound2(x float64) float64 {
	return math.RoundToEven(x*100) / 100
}

// FirstLine is eval.py's cut for trec, triviaqa, samsum and lsht (§A.3):
// prediction.lstrip('\n').split('\n')[0].
func FirstLine(pred string) string {
	s := strings.TrimLeft(pred, "\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
