//go:build cgo

package longbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJieba(t *testing.T) {
	seg, free, err := NewJieba()
	if err != nil {
		t.Skip(err)
	}
	defer free()
	for _, c := range []struct{ in, want string }{
		{"我来到北京清华大学", "我/来到/北京/清华大学"},
		// Python jieba: the non-dictionary run "GPT-4 " goes through
		// finalseg, whose re_skip keeps "7B" whole and splits "GPT-4".
		{"GPT-4 and LLaMA 7B 模型", "GPT/-/4/ /and/ /LLaMA/ /7B/ /模型"},
		{"a\r\nb", "a/\r\n/b"},
	} {
		if got := strings.Join(seg.Cut(c.in), "/"); got != c.want {
			t.Errorf("Cut(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	m := &Metrics{Jieba: seg}
	// 我/来到/北京 vs 我/来到/北京/清华大学: P 1, R 3/4.
	if got, err := m.QAF1ZH("我来到北京。", "我来到北京清华大学", nil); err != nil || !near(got, 2*0.75/1.75) {
		t.Errorf("QAF1ZH = %v, %v", got, err)
	}
	// rouge_zh: hyp words {我 来到 北京} (n 3), ref 4 words: LCS 3.
	if got, err := m.RougeZH("我来到北京", "我来到北京清华大学", nil); err != nil || !near(got, 2.0*((1*0.75)/(1+0.75+1e-8))) {
		t.Errorf("RougeZH = %v, %v", got, err)
	}
}

// TestJiebaAgreesWithCppJieba: on purely Chinese text the port and
// cppjieba (same dictionary and HMM) should cut alike.
func TestJiebaAgreesWithCppJieba(t *testing.T) {
	seg, free, err := NewJieba()
	if err != nil {
		t.Skip(err)
	}
	defer free()
	empty := filepath.Join(t.TempDir(), "user.utf8")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cpp := newCppJieba(empty)
	defer cpp.Free()
	for _, s := range []string{
		"他来到了网易杭研大厦",
		"小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
		"会议讨论了第三季度的销售数据和市场策略。",
		"请判断给定新闻的类别，下面是一些例子。",
		"永和服装饰品有限公司",
		"工信处女干事每月经过下属科室都要亲口交代口交换机等技术性器件的安装工作",
		"以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。",
		"下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。",
		"阅读以下文字并用中文简短回答：现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。",
		"这个杭研大厦的蘄耀谈唎禑鸔愖怎么样",
	} {
		got, want := strings.Join(seg.Cut(s), "/"), strings.Join(cpp.Cut(s, true), "/")
		if got != want {
			t.Errorf("Cut(%q):\n port %s\n cpp  %s", s, got, want)
		}
	}
}

// TestJiebaPythonDict: cppjieba's dictionary lacks words that Python jieba's
// dict.txt has ("吉林", "U盘", "T恤衫", "A股", ...) and has two it lacks
// ("张力", "张华"); LoadJiebaPy edits them in and out. Expected cuts are
// Python jieba 0.42.1's jieba.cut(s, cut_all=False). The last case depends
// only on the dictionary's frequency total: 深深/深 and 深/深深 have the same
// probability, and the rounding of log(total) decides.
func TestJiebaPythonDict(t *testing.T) {
	seg, free, err := NewJieba()
	if err != nil {
		t.Skip(err)
	}
	defer free()
	for _, c := range []struct{ in, want string }{
		{"吉林省长春市今年的粮食产量比去年增加了百分之五。", "吉林省/长春市/今年/的/粮食产量/比/去年/增加/了/百分之五/。"},
		{"这根绳子的张力太大", "这根/绳子/的/张力/太大"},
		{"张华和李明创办了公司", "张华/和/李明/创办/了/公司"},
		{"他把资料拷贝到U盘里，然后穿上T恤衫出门了", "他/把/资料/拷贝到/U盘/里/，/然后/穿/上/T恤衫/出门/了"},
		{"他在A股和B股市场上都有投资", "他/在/A股/和/B股/市场/上/都/有/投资"},
		{"庭院深深深几许", "庭院/深深/深/几许"},
	} {
		if got := strings.Join(seg.Cut(c.in), "/"); got != c.want {
			t.Errorf("Cut(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	_, hmm := JiebaFiles(DefaultJiebaDir())
	other := filepath.Join(t.TempDir(), "dict.txt")
	if err := os.WriteFile(other, []byte("我 10 r\n张力 160 nr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJiebaPy(other, hmm); err == nil || !strings.Contains(err.Error(), "not the cppjieba dictionary") {
		t.Errorf("LoadJiebaPy on another dictionary: %v, want a fingerprint error", err)
	}
}
