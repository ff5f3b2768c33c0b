// Package gsebench compares go-ego/gse with misabench's jieba port
// (longbench.NewJieba, the LongBench scorer's segmenter) on speed and on
// agreement with Python jieba's accurate mode. It is a module of its own so
// that gse stays out of misabench's go.mod; its numbers are in BENCHMARKS.md
// ("LongBench Chinese segmentation") and the choice in docs/longbench.md.
//
//	cd tools/longbench/gsebench
//	go test -run '^$' -bench Jieba -benchtime 2s -count 6 | benchstat -
//	go test -run Agreement -v      # agreement in more gse configurations
package gsebench
