//go:build !cgo

package longbench

// DefaultJiebaDir is gojieba's data directory: none without cgo (gojieba
// needs cgo). Load the port with LoadJiebaDir on a copy of its files, or
// with LoadJieba on explicit ones.
func DefaultJiebaDir() string { return "" }
