//go:build cgo

package longbench

import (
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
// of words Python jieba lacks; on the committed corpus's Chinese texts it is
// twice as fast as the port but cuts 75.7% of them as jieba. go-ego/gse
// v0.80.3 (pure Go) cuts about half of them as jieba and runs ~60 times
// slower there (BENCHMARKS.md, docs/longbench.md; tools/longbench/gsebench).
// gojieba is kept only for its data files (found next to its source in the
// module cache of the machine that built the binary, or in a directory given
// at run time), which is why this file needs cgo. Checked against Python
// jieba 0.42.1 on 123,915 texts: every one cut identically
// (docs/longbench.md).

// DefaultJiebaDir is gojieba's data directory: a path in the module cache of
// the machine that built the binary, so a binary carried to another machine
// needs the files copied there and named (LoadJiebaDir; misabench's
// --jieba-dir).
func DefaultJiebaDir() string { return gojieba.DICT_DIR }

// newCppJieba is gojieba's own segmenter, for comparison in tests; an empty
// user dictionary replaces cppjieba's default one.
func newCppJieba(emptyUserDict string) *gojieba.Jieba {
	d := gojieba.DICT_DIR
	return gojieba.NewJieba(filepath.Join(d, JiebaDictFile), filepath.Join(d, JiebaHMMFile),
		emptyUserDict, filepath.Join(d, "idf.utf8"), filepath.Join(d, "stop_words.utf8"))
}
