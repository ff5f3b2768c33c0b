package longbench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Jieba is a Go port of Python jieba's accurate mode, jieba.cut(s,
// cut_all=False, HMM=True) (jieba/__init__.py: cut, get_DAG, calc,
// __cut_DAG; jieba/finalseg: cut, viterbi), as qa_f1_zh_score and
// rouge_zh_score call it (evals.md §A.4). It needs jieba's dictionary
// ("word freq tag" lines: Python jieba's dict.txt, or cppjieba's
// jieba.dict.utf8) and the HMM model in cppjieba's hmm_model.utf8 layout.
//
// With Python jieba's own dict.txt and HMM probabilities (exported to this
// layout at full precision) it cut 103,915 texts exactly as Python jieba
// 0.42.1 does; LoadJiebaPy edits cppjieba's dictionary into dict.txt
// (docs/longbench.md). Remaining possible sources of difference (§A.5):
// cppjieba's emission probabilities are printed with 6 decimals (Python's
// have 16 digits; no difference was seen on that corpus), and Go's math.Log
// may differ from libm's in the last bit; each can only flip near-ties.
type Jieba struct {
	freq     map[string]int // words and (freq 0) their prefixes, as gen_pfdict
	logTotal float64
	start    [4]float64
	trans    [4][4]float64
	emit     [4]map[rune]float64
}

// HMM states in cppjieba's file order.
const (
	stB = iota
	stE
	stM
	stS
)

const minFloat = -3.14e100

// The data files of a jieba directory, as gojieba (cppjieba) names them.
const (
	JiebaDictFile = "jieba.dict.utf8"
	JiebaHMMFile  = "hmm_model.utf8"
)

// JiebaFiles are the dictionary and HMM model files in dir.
func JiebaFiles(dir string) (dict, hmm string) {
	return filepath.Join(dir, JiebaDictFile), filepath.Join(dir, JiebaHMMFile)
}

// LoadJiebaDir loads the port from a directory holding gojieba v1.4.6's
// jieba.dict.utf8 (edited into Python jieba's dict.txt, LoadJiebaPy) and
// hmm_model.utf8, such as gojieba's own (DefaultJiebaDir) or a copy of its
// two files. A missing file is an error wrapping fs.ErrNotExist that names
// its path, found before the dictionary is read.
func LoadJiebaDir(dir string) (*Jieba, error) {
	dict, hmm := JiebaFiles(dir)
	for _, f := range []string{dict, hmm} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	return LoadJiebaPy(dict, hmm)
}

// NewJieba returns the port loaded from DefaultJiebaDir (LoadJiebaDir), and
// a release function. Without cgo there is no default directory, and the
// error wraps ErrNoJieba.
func NewJieba() (Segmenter, func(), error) {
	dir := DefaultJiebaDir()
	if dir == "" {
		return nil, nil, fmt.Errorf("%w: built without cgo, so no default jieba directory (gojieba's); load one with LoadJiebaDir", ErrNoJieba)
	}
	j, err := LoadJiebaDir(dir)
	if err != nil {
		return nil, nil, err
	}
	return j, func() {}, nil
}

// LoadJieba reads a jieba dictionary and a cppjieba HMM model file.
func LoadJieba(dictPath, hmmPath string) (*Jieba, error) {
	return loadJieba(dictPath, hmmPath, nil)
}

// dictEdit turns one dictionary into another: lines to drop (exact "word
// freq tag" text) and entries to add after the file, as if appended to it.
type dictEdit struct {
	lines, total int // the input file's line count and frequency total
	drop         []string
	add          []dictEntry
}

type dictEntry struct {
	word string
	freq int
}

// LoadJiebaPy reads cppjieba's jieba.dict.utf8 (as gojieba v1.4.6 ships it)
// and edits it into Python jieba 0.42.1's dict.txt: cppjieba's copy lacks 66
// of dict.txt's lines (65 words mixing Latin and Han such as "U盘", the word
// "吉林", and a second "B超" line, which counts twice in the total) and has
// two that dict.txt lacks ("张力", "张华"). Both the words and the frequency
// total (60,101,967, whose log every route probability subtracts) then equal
// Python jieba's, and the port cuts as jieba.cut does (docs/longbench.md has
// the comparison). The file must be the expected one (348,982 lines, total
// 60,101,983), or it is an error.
func LoadJiebaPy(cppDictPath, hmmPath string) (*Jieba, error) {
	return loadJieba(cppDictPath, hmmPath, &cppToPyDict)
}

func loadJieba(dictPath, hmmPath string, edit *dictEdit) (*Jieba, error) {
	j := &Jieba{freq: map[string]int{}}
	f, err := os.Open(dictPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	total := 0
	add := func(w string, fr int) {
		j.freq[w] = fr
		total += fr
		for i := range w {
			if i == 0 {
				continue
			}
			if _, ok := j.freq[w[:i]]; !ok {
				j.freq[w[:i]] = 0
			}
		}
	}
	drop := map[string]bool{}
	if edit != nil {
		for _, l := range edit.drop {
			drop[l] = true
		}
	}
	sc := bufio.NewScanner(f)
	lines, rawTotal, dropped := 0, 0, 0
	for n := 1; sc.Scan(); n++ {
		lines++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		parts := strings.Split(line, " ")
		if len(parts) < 2 {
			return nil, fmt.Errorf("%s:%d: want \"word freq [tag]\"", dictPath, n)
		}
		fr, err := strconv.Atoi(parts[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", dictPath, n, err)
		}
		rawTotal += fr
		if drop[line] {
			dropped++
			continue
		}
		add(parts[0], fr)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if edit != nil {
		if lines != edit.lines || rawTotal != edit.total || dropped != len(edit.drop) {
			return nil, fmt.Errorf("%s: %d lines, frequency total %d, %d of %d lines to drop: not the cppjieba dictionary (%d lines, total %d) that the edit into Python jieba's dict.txt was made for",
				dictPath, lines, rawTotal, dropped, len(edit.drop), edit.lines, edit.total)
		}
		for _, e := range edit.add {
			add(e.word, e.freq)
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("%s: empty dictionary", dictPath)
	}
	j.logTotal = math.Log(float64(total))
	if err := j.loadHMM(hmmPath); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *Jieba) loadHMM(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 9 {
		return fmt.Errorf("%s: %d data lines, want 9 (start, 4 transition rows, 4 emission rows)", path, len(lines))
	}
	nums := func(l string) ([]float64, error) {
		var out []float64
		for _, s := range strings.Fields(l) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			out = append(out, v)
		}
		if len(out) != 4 {
			return nil, fmt.Errorf("%s: want 4 numbers in %q", path, l)
		}
		return out, nil
	}
	v, err := nums(lines[0])
	if err != nil {
		return err
	}
	copy(j.start[:], v)
	for s := range 4 {
		v, err := nums(lines[1+s])
		if err != nil {
			return err
		}
		copy(j.trans[s][:], v)
		j.emit[s] = map[rune]float64{}
		for _, kv := range strings.Split(lines[5+s], ",") {
			k, val, ok := strings.Cut(kv, ":")
			r, n := utf8.DecodeRuneInString(k)
			if !ok || n != len(k) {
				return fmt.Errorf("%s: bad emission entry %q", path, kv)
			}
			p, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			j.emit[s][r] = p
		}
	}
	return nil
}

func isHanDefault(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FD5) || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
		(r >= '0' && r <= '9') || strings.ContainsRune("+#&._%-", r)
}

// Cut is jieba.cut(s, cut_all=False, HMM=True).
func (j *Jieba) Cut(s string) []string {
	var out []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		k := i
		if isHanDefault(rs[i]) {
			for k < len(rs) && isHanDefault(rs[k]) {
				k++
			}
			out = j.cutDAG(rs[i:k], out)
		} else {
			for k < len(rs) && !isHanDefault(rs[k]) {
				k++
			}
			// re_skip (\r\n|\s): whitespace pieces whole ("\r\n" as one),
			// everything else one character at a time.
			blk := rs[i:k]
			for p := 0; p < len(blk); p++ {
				if blk[p] == '\r' && p+1 < len(blk) && blk[p+1] == '\n' {
					out = append(out, "\r\n")
					p++
					continue
				}
				out = append(out, string(blk[p]))
			}
		}
		i = k
	}
	return out
}

// cutDAG is __cut_DAG (HMM on).
func (j *Jieba) cutDAG(s []rune, out []string) []string {
	n := len(s)
	// get_DAG
	dag := make([][]int, n)
	for k := range n {
		var tmp []int
		for i := k; i < n; i++ {
			fr, ok := j.freq[string(s[k:i+1])]
			if !ok {
				break
			}
			if fr > 0 {
				tmp = append(tmp, i)
			}
		}
		if len(tmp) == 0 {
			tmp = []int{k}
		}
		dag[k] = tmp
	}
	// calc: route[idx] = max((log(freq or 1) - logtotal + route[x+1], x));
	// tuple order breaks ties toward the larger x.
	prob := make([]float64, n+1)
	next := make([]int, n+1)
	for idx := n - 1; idx >= 0; idx-- {
		first := true
		for _, x := range dag[idx] {
			fr := j.freq[string(s[idx:x+1])]
			if fr == 0 {
				fr = 1
			}
			p := math.Log(float64(fr)) - j.logTotal + prob[x+1]
			if first || p > prob[idx] || (p == prob[idx] && x > next[idx]) {
				prob[idx], next[idx], first = p, x, false
			}
		}
	}
	var buf []rune
	flush := func() {
		switch {
		case len(buf) == 0:
		case len(buf) == 1:
			out = append(out, string(buf))
		case j.freq[string(buf)] == 0:
			out = finalCut(j, buf, out)
		default:
			for _, r := range buf {
				out = append(out, string(r))
			}
		}
		buf = buf[:0]
	}
	for x := 0; x < n; {
		y := next[x] + 1
		if y-x == 1 {
			buf = append(buf, s[x])
		} else {
			flush()
			out = append(out, string(s[x:y]))
		}
		x = y
	}
	flush()
	return out
}

// finalseg's re_skip: ([a-zA-Z0-9]+(?:\.\d+)?%?), \d being Unicode.
var finalSkipRE = regexp.MustCompile(`[a-zA-Z0-9]+(?:\.\p{Nd}+)?%?`)

// finalCut is finalseg.cut: Chinese runs (\u4E00-\u9FD5) go through the
// Viterbi cut; other text is split by re_skip, every non-empty piece kept.
func finalCut(j *Jieba, s []rune, out []string) []string {
	isHan := func(r rune) bool { return r >= 0x4E00 && r <= 0x9FD5 }
	for i := 0; i < len(s); {
		k := i
		if isHan(s[i]) {
			for k < len(s) && isHan(s[k]) {
				k++
			}
			out = j.viterbiCut(s[i:k], out)
		} else {
			for k < len(s) && !isHan(s[k]) {
				k++
			}
			blk := string(s[i:k])
			last := 0
			for _, m := range finalSkipRE.FindAllStringIndex(blk, -1) {
				if m[0] > last {
					out = append(out, blk[last:m[0]])
				}
				out = append(out, blk[m[0]:m[1]])
				last = m[1]
			}
			if last < len(blk) {
				out = append(out, blk[last:])
			}
		}
		i = k
	}
	return out
}

// prevStatus is finalseg's PrevStatus.
var prevStatus = [4][2]int{stB: {stE, stS}, stM: {stM, stB}, stS: {stS, stE}, stE: {stB, stM}}

// stateName orders states as Python compares their letters (B < E < M < S)
// when max() breaks a tie on (prob, state) tuples.
var stateName = [4]byte{'B', 'E', 'M', 'S'}

func (j *Jieba) emitP(st int, r rune) float64 {
	if p, ok := j.emit[st][r]; ok {
		return p
	}
	return minFloat
}

// viterbiCut is finalseg.__cut with viterbi(obs, 'BMES', ...).
func (j *Jieba) viterbiCut(s []rune, out []string) []string {
	n := len(s)
	v := make([][4]float64, n)
	from := make([][4]int, n)
	for st := range 4 {
		v[0][st] = j.start[st] + j.emitP(st, s[0])
	}
	for t := 1; t < n; t++ {
		for st := range 4 {
			em := j.emitP(st, s[t])
			best, bestState := 0.0, -1
			for _, y0 := range prevStatus[st] {
				p := v[t-1][y0] + j.trans[y0][st] + em
				if bestState < 0 || p > best || (p == best && stateName[y0] > stateName[bestState]) {
					best, bestState = p, y0
				}
			}
			v[t][st], from[t][st] = best, bestState
		}
	}
	last := stE
	if v[n-1][stS] >= v[n-1][stE] { // tie: 'S' > 'E'
		last = stS
	}
	path := make([]int, n)
	path[n-1] = last
	for t := n - 1; t > 0; t-- {
		path[t-1] = from[t][path[t]]
	}
	begin, nexti := 0, 0
	for i, st := range path {
		switch st {
		case stB:
			begin = i
		case stE:
			out = append(out, string(s[begin:i+1]))
			nexti = i + 1
		case stS:
			out = append(out, string(s[i]))
			nexti = i + 1
		}
	}
	if nexti < n {
		out = append(out, string(s[nexti:]))
	}
	return out
}
