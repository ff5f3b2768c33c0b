//go:build !cgo

package longbench

import "fmt"

// JiebaFiles are the default dictionary and HMM model files: none without
// cgo (they come with gojieba, which needs cgo).
func JiebaFiles() (dict, hmm string) { return "", "" }

// NewJieba needs gojieba's data files, hence cgo: without it, load the port
// with LoadJieba on explicit files.
func NewJieba() (Segmenter, func(), error) {
	return nil, nil, fmt.Errorf("%w: built without cgo, so no default jieba dictionary (give the files explicitly)", ErrNoJieba)
}
