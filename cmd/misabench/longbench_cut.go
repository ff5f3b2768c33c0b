package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/longbench"
)

// newLongBenchCutCmd is `misabench longbench cut`: the Chinese segmentation
// the scorer uses (the jieba port, accurate mode with HMM), one JSON string
// per input line in, one JSON array of tokens per line out, so that it can
// be compared with Python's jieba.cut (tools/longbench/compare_jieba.py).
func newLongBenchCutCmd(a *app) *cobra.Command {
	opts := &LongBenchScoreOptions{}
	cmd := &cobra.Command{
		Use:   "cut",
		Short: "Segment text with the scorer's jieba port (JSON lines in, token arrays out)",
		Long: `cut reads JSON strings, one per line, from standard input and writes for each
the JSON array of tokens that the scorer's jieba port (Python jieba's
jieba.cut(s, cut_all=False), as LongBench's qa_f1_zh_score and rouge_zh_score
call it) cuts it into. The dictionary flags are score's.`,
		Example: `  printf '"我来到北京清华大学"\n' | misabench longbench cut`,
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			seg, _, err := loadJieba(opts)
			if err != nil {
				return err
			}
			return longBenchCut(cmd.InOrStdin(), writerOr(a.out), seg.Cut)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.JiebaDir, "jieba-dir", "", "`dir`ectory holding gojieba's "+longbench.JiebaDictFile+" and "+longbench.JiebaHMMFile+" (default: as score)")
	f.StringVar(&opts.JiebaDict, "jieba-dict", "", "jieba dictionary `file` (default: as score)")
	f.StringVar(&opts.JiebaHMM, "jieba-hmm", "", "jieba HMM model `file` (default: as score)")
	return cmd
}

func longBenchCut(in io.Reader, out io.Writer, cut func(string) []string) error {
	br := bufio.NewReaderSize(in, 1<<20)
	bw := bufio.NewWriter(out)
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if len(b) > 0 {
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				return badInput(fmt.Errorf("stdin:%d: want a JSON string: %w", line, err))
			}
			toks := cut(s)
			if toks == nil {
				toks = []string{}
			}
			enc, err := json.Marshal(toks)
			if err != nil {
				return err
			}
			bw.Write(enc)
			bw.WriteByte('\n')
		}
		if rerr == io.EOF {
			return bw.Flush()
		}
		if rerr != nil {
			return rerr
		}
	}
}
