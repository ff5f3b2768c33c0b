//go:build cgo

package longbench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/yanyiwu/gojieba"
)

// Chinese segmentation (§A.4 qa_f1_zh_score, rouge_zh_score; §A.5 "Chinese
// tokenisation depends on jieba's dictionary and version").
//
// Choice: the Go port of Python jieba's accurate mode in jieba.go, on the
// jieba dictionary and HMM model that gojieba v1.4.6 (cppjieba) ships, the
// dictionary edited into Python jieba 0.42.1's dict.txt (LoadJiebaPy). Its
// segmenter itself is not used: cppjieba's MixSegment handles Latin and
// digits differently from Python jieba (it cuts "7B" into "7" "B" where
// Python's finalseg re_skip keeps "7B"), and gojieba loads a user dictionary
// of words Python jieba lacks. go-ego/gse v0.80.3 (pure Go) was also tried:
// its embedded dictionary differs from jieba's in ~8,700 entries, adds a
// traditional-Chinese one, and it lower-cases Latin text (which would
// change rouge_zh_score). gojieba is kept only for its data files (found
// next to its source in the module cache of the machine that built the
// binary), which is why this file needs cgo. Checked against Python jieba
// 0.42.1 on 103,915 texts: every one cut identically (docs/longbench.md).

// JiebaFiles are the dictionary and HMM model files NewJieba loads.
func JiebaFiles() (dict, hmm string) {
	return filepath.Join(gojieba.DICT_DIR, "jieba.dict.utf8"), filepath.Join(gojieba.DICT_DIR, "hmm_model.utf8")
}

// NewJieba returns the jieba port on gojieba's data files (the dictionary
// edited into Python jieba's, LoadJiebaPy), and a release function.
func NewJieba() (Segmenter, func(), error) {
	dict, hmm := JiebaFiles()
	for _, f := range []string{dict, hmm} {
		if _, err := os.Stat(f); err != nil {
			return nil, nil, fmt.Errorf("jieba dictionary: %w (it is read from gojieba's directory in the module cache of the build machine)", err)
		}
	}
	j, err := LoadJiebaPy(dict, hmm)
	if err != nil {
		return nil, nil, err
	}
	return j, func() {}, nil
}

// newCppJieba is gojieba's own segmenter, for comparison in tests; an empty
// user dictionary replaces cppjieba's default one.
func newCppJieba(emptyUserDict string) *gojieba.Jieba {
	d := gojieba.DICT_DIR
	return gojieba.NewJieba(filepath.Join(d, "jieba.dict.utf8"), filepath.Join(d, "hmm_model.utf8"),
		emptyUserDict, filepath.Join(d, "idf.utf8"), filepath.Join(d, "stop_words.utf8"))
}
