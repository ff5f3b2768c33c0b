package longbench

// cppToPyDict edits cppjieba's jieba.dict.utf8 (gojieba v1.4.6) into Python
// jieba 0.42.1's dict.txt (LoadJiebaPy). Found by comparing the two files
// line by line as multisets: dict.txt has the 66 entries below that
// jieba.dict.utf8 lacks ("B超" twice there, once here), and lacks the two
// dropped lines. The part of speech tags do not matter to jieba.cut.
var cppToPyDict = dictEdit{
	lines: 348982,
	total: 60101983,
	drop:  []string{"张力 160 nr", "张华 140 nr"},
	add: []dictEntry{
		{"B超", 3}, {"A座", 3}, {"A股", 3}, {"A型", 3}, {"A轮", 3}, {"AA制", 3}, {"AB型", 3},
		{"B座", 3}, {"B股", 3}, {"B型", 3}, {"B轮", 3}, {"BB机", 3}, {"BP机", 3}, {"C盘", 3},
		{"C座", 3}, {"C语言", 3}, {"CD盒", 3}, {"CD机", 3}, {"CALL机", 3}, {"D盘", 3}, {"D座", 3},
		{"D版", 3}, {"E盘", 3}, {"E座", 3}, {"E化", 3}, {"E通", 3}, {"F盘", 3}, {"F座", 3},
		{"G盘", 3}, {"H盘", 3}, {"H股", 3}, {"I盘", 3}, {"IC卡", 3}, {"IP卡", 3}, {"IP电话", 3},
		{"IP地址", 3}, {"K党", 3}, {"K歌之王", 3}, {"N年", 3}, {"O型", 3}, {"PC机", 3}, {"PH值", 3},
		{"SIM卡", 3}, {"U盘", 3}, {"VISA卡", 3}, {"Z盘", 3}, {"Q版", 3}, {"QQ号", 3}, {"RSS订阅", 3},
		{"T盘", 3}, {"X光", 3}, {"X光线", 3}, {"X射线", 3}, {"γ射线", 3}, {"T恤衫", 3}, {"T型台", 3},
		{"T台", 3}, {"4S店", 3}, {"4s店", 3}, {"江南style", 3}, {"江南Style", 3}, {"1号店", 3},
		{"小S", 3}, {"大S", 3}, {"阿Q", 3}, {"吉林", 89},
	},
}
