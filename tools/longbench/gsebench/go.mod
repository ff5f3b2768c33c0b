// A module of its own, so that go-ego/gse, used only by this benchmark, stays
// out of misabench's go.mod: a build-tagged file in package longbench would
// still be added to go.mod by `go mod tidy`, which reads every build tag.
module github.com/misabench/misabench/tools/longbench/gsebench

go 1.26.8

require (
	github.com/go-ego/gse v0.80.3
	github.com/misabench/misabench v0.0.0
)

require (
	github.com/vcaesar/cedar v0.20.2 // indirect
	github.com/yanyiwu/gojieba v1.4.6 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/misabench/misabench => ../../..
