#!/usr/bin/env python3
"""Write the synthetic LongBench scoring corpus (longbench/testdata/official/).

For each of the 21 LongBench v1 data sets and the 13 LongBench-E sets it
writes data records in the official layout (input, context, answers, length,
dataset, language, all_classes, _id) and three prediction directories in the
layout LongBench/pred.py writes (pred, answers, all_classes, length):

  OUT/data/<dataset>.jsonl, OUT/data/<dataset>_e.jsonl
  OUT/pred/{a,b,c}/<dataset>.jsonl, OUT/pred_e/{a,b,c}/<dataset>.jsonl

Every text is synthetic: written here or drawn from small word lists. No model
made these predictions; they are hand-made cases to exercise every metric and
quirk of the official scorer. Variant "a" is mostly close to the answer, "b"
partly right, "c" collects the edge cases (empty, multi-line, Unicode, ...);
each variant also gets a rotating share of the others' cases.

Python 3 standard library only; deterministic (fixed seed, no hash order).

  python3 tools/longbench/make_corpus.py [--out longbench/testdata/official]
"""

import argparse
import json
import os
import random
import shutil

SEED = 20240611
N_V1 = 20  # records per v1 data set
N_E = 24  # records per LongBench-E data set
VARIANTS = ["a", "b", "c"]

# (name, language, metric, has LongBench-E config), in evals.md §A.2 order.
DATASETS = [
    ("narrativeqa", "en", "qa", False),
    ("qasper", "en", "qa", True),
    ("multifieldqa_en", "en", "qa", True),
    ("multifieldqa_zh", "zh", "qa_zh", False),
    ("hotpotqa", "en", "qa", True),
    ("2wikimqa", "en", "qa", True),
    ("musique", "en", "qa", False),
    ("dureader", "zh", "rouge_zh", False),
    ("gov_report", "en", "rouge", True),
    ("qmsum", "en", "rouge", False),
    ("multi_news", "en", "rouge", True),
    ("vcsum", "zh", "rouge_zh", False),
    ("trec", "en", "cls", True),
    ("triviaqa", "en", "qa", True),
    ("samsum", "en", "rouge", True),
    ("lsht", "zh", "cls_zh", False),
    ("passage_count", "en", "count", True),
    ("passage_retrieval_en", "en", "retrieval", True),
    ("passage_retrieval_zh", "zh", "retrieval_zh", False),
    ("lcc", "code", "code", True),
    ("repobench-p", "code", "code", True),
]
FIRST_LINE = {"trec", "triviaqa", "samsum", "lsht"}

# ---------------------------------------------------------------- English QA

QA = [
    ("Which landmark was built for the 1889 World's Fair?", ["the Eiffel Tower", "Eiffel Tower"]),
    ("In what year did the bridge open?", ["1889"]),
    ("Who discovered polonium?", ["Marie Curie", "Curie"]),
    ("Does the model use attention?", ["yes"]),
    ("What dataset is used for evaluation?", ["unanswerable"]),
    ("Where does the story take place?", ["New York City", "NYC"]),
    ("What animal follows the narrator home?", ["a black cat"]),
    ("Who wrote the play?", ["Ödön von Horváth"]),
    ("What is the hero called in Greek?", ["Οδυσσευς"]),
    ("Which city hosted the summit?", ["İstanbul"]),
    ("What metric do the authors report?", ["BLEU and ROUGE-L scores"]),
    ("How many layers does the encoder have?", ["12 layers", "twelve"]),
    ("What is the name of the ship?", ["The Flying Dutchman"]),
    ("Which two countries signed the treaty?", ["France and the United Kingdom"]),
    ("What is the boy's nickname?", ["an_old_friend"]),
    ("What does the letter contain?", ["a map of the island and a key"]),
    ("Who is the director of the film?", ["Jean-Luc Godard"]),
    ("What language is the corpus in?", ["English, German, and French"]),
    ("What colour is the door?", ["red"]),
    ("What did the committee decide?", ["to postpone the vote until March"]),
]

QA_CASES = [
    "exact", "upper", "punct", "article", "extra", "partial", "empty", "multiline",
    "leading_nl", "reorder", "nbsp", "sep", "sigma", "dotless", "wrong", "repeat",
    "tabs", "fullwidth", "alt", "underscore",
]


def qa_pred(case, answers, rnd):
    a = answers[0]
    if case == "exact":
        return a
    if case == "upper":
        return a.upper()
    if case == "punct":
        return '"' + a + '."!'
    if case == "article":
        return "The answer is: an " + a + ", the end"
    if case == "extra":
        return a + " according to the passage " + rnd.choice(["in chapter 3", "(see above)", "probably"])
    if case == "partial":
        w = a.split()
        return " ".join(w[: max(1, len(w) // 2)]) + " something else"
    if case == "empty":
        return ""
    if case == "multiline":
        return a + "\nExplanation: the text says " + a.lower() + ".\nQuestion: next"
    if case == "leading_nl":
        return "\n\n" + a + "\nmore text"
    if case == "reorder":
        w = a.split()
        rnd.shuffle(w)
        return " ".join(w)
    if case == "nbsp":
        return a.replace(" ", "\u00a0") + "\u2003end"
    if case == "sep":
        return a.replace(" ", "\x1c") + "\x1fx\x85y"
    if case == "sigma":
        return "ΟΔΥΣΣΕΥΣ and Σ Σ. ΑΣ" if rnd.random() < 0.5 else a.upper() + " ΟΔΥΣΣΕΥΣ"
    if case == "dotless":
        return "İSTANBUL İstanbul " + a
    if case == "wrong":
        return rnd.choice(["I don't know", "none", "42", "The text does not say."])
    if case == "repeat":
        return (a + " ") * 3
    if case == "tabs":
        return "\t" + a.replace(" ", " \t\n ") + "\r\n"
    if case == "fullwidth":
        return a + " １２ ＡＢＣ"
    if case == "alt":
        return answers[-1]
    if case == "underscore":
        return "the_" + a + " a_b an-the"
    raise ValueError(case)


# ------------------------------------------------------------- summarisation

WORDS = """report committee budget funding agency program review members meeting
project data analysis results team plan schedule risk cost design model study
policy office federal state county school health care service water energy
market price growth sales revenue customer product quality safety training
staff system network security update release issue bug test user feature
mr. dr. u.s. e.g. i.e. 3.5 2,000 Amy Bob Carol Dave John Mary""".split()


def sentence(rnd, lo=4, hi=12):
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))


def summary(rnd, n):
    return " ".join(sentence(rnd).capitalize() + "." for _ in range(n))


ROUGE_CASES = [
    "copy", "shuffle", "drop", "replace", "empty", "dots", "space", "nodot", "case",
    "repeat", "multiline", "leading_nl", "partial", "ellipsis", "tabs", "one_word",
]


def rouge_pred(case, ref, rnd):
    sents = [s for s in ref.split(".") if s.strip()]
    if case == "copy":
        return ref
    if case == "shuffle":
        rnd.shuffle(sents)
        return ". ".join(s.strip() for s in sents) + "."
    if case == "drop":
        return " ".join(w for w in ref.split() if rnd.random() > 0.3)
    if case == "replace":
        return " ".join(w if rnd.random() > 0.3 else rnd.choice(WORDS) for w in ref.split())
    if case == "empty":
        return ""
    if case == "dots":
        return "..."
    if case == "space":
        return " . \n. "
    if case == "nodot":
        return ref.replace(".", " ")
    if case == "case":
        return ref.upper() if rnd.random() < 0.5 else ref.lower()
    if case == "repeat":
        return (sents[0] + ". ") * 4
    if case == "multiline":
        return sents[0] + ".\n" + "\n".join(sents[1:]) + "\nSummary: done"
    if case == "leading_nl":
        return "\n\n" + ref + "\n" + sentence(rnd)
    if case == "partial":
        return sents[0] + ". " + sentence(rnd) + "."
    if case == "ellipsis":
        return ref.replace(". ", "... ", 1) + " ..."
    if case == "tabs":
        return ref.replace(" ", "\t", 3)
    if case == "one_word":
        return rnd.choice(ref.split())
    raise ValueError(case)


def recursion_words(k, prefix):
    # k distinct words that occur in no reference.
    return " ".join("%s%dq" % (prefix, i) for i in range(k))


# ----------------------------------------------------------------- Chinese

ZH_SENTENCES = [
    "我来到北京清华大学读研究生。",
    "小明硕士毕业于中国科学院计算所，后在日本京都大学深造。",
    "会议讨论了第三季度的销售数据和市场策略。",
    "吉林省长春市今年的粮食产量比去年增加了百分之五。",
    "这根绳子的张力太大，工人们决定换一根更粗的。",
    "张华和李明在2019年3月共同创办了这家公司。",
    "他把资料拷贝到U盘里，然后穿上T恤衫出门了。",
    "请在IP地址栏输入192.168.1.1，然后按回车键。",
    "根据国家统计局的数据，全年GDP增长5.2%。",
    "工信处女干事每月经过下属科室都要亲口交代交换机等技术性器件的安装工作。",
    "项目组决定下周一上午十点召开第二次评审会议。",
    "这款手机采用了新的芯片，续航时间提高了约20%。",
    "由于天气原因，航班推迟到晚上八点起飞。",
    "研究人员发现，睡眠不足会影响记忆力和注意力。",
    "老师要求同学们在周五之前提交读书报告。",
    "公司计划明年在上海和深圳各开设一家分店。",
    "他说：“我们必须尽快解决这个问题！”",
    "《红楼梦》是中国古典小说的巅峰之作。",
    "市政府宣布将投入三亿元用于改善城市交通。",
    "这场比赛最终以2比1结束，主队获得了冠军。",
    "小王今天去银行办理了信用卡业务。",
    "患者应在医生指导下服用药物，不可自行加量。",
    "新版本修复了登录页面的一个安全漏洞。",
    "大家一致认为，这个方案的成本太高，需要重新评估。",
    "今年春节期间，全国旅游收入同比增长了12.3%。",
    "江南Style曾经在网上非常流行。",
    "他买了一台PC机和一个CD盒，花了两千多元。",
    "请判断给定新闻的类别，下面是一些例子。",
    "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。",
    "这个杭研大厦的蘄耀谈唎禑鸔愖怎么样",
    "阅读以下文字并用中文简短回答：现在请基于上面的文章回答下面的问题。",
    "经理：好的，那我们先把预算的问题确定下来，然后再讨论人员安排。",
    "员工甲：我觉得培训时间可以安排在周末，这样不影响正常工作。",
    "主持人：今天会议的主要议题有三个，第一个是年度计划。",
    "Python和Java是目前最常用的编程语言之一。",
    "他在A股和B股市场上都有投资，最近收益不错。",
    "这本书一共有３２章，第１２章讲的是机器学习。",
    "北京时间2023年10月1日，国庆节假期开始。",
    "天气预报说明天有大雨，请大家注意安全……",
    "我们需要——而且必须——在月底前完成任务。",
]

ZH_QA = [
    ("他在哪里读研究生？", ["北京清华大学"]),
    ("公司是谁创办的？", ["张华和李明"]),
    ("粮食产量增加了多少？", ["百分之五"]),
    ("会议什么时候召开？", ["下周一上午十点"]),
    ("资料拷贝到哪里？", ["U盘"]),
    ("全年GDP增长多少？", ["5.2%", "百分之五点二"]),
    ("航班推迟到几点？", ["晚上八点"]),
    ("新版本修复了什么？", ["登录页面的一个安全漏洞"]),
    ("分店开在哪里？", ["上海和深圳"]),
    ("比赛结果是什么？", ["2比1，主队获得冠军"]),
    ("绳子有什么问题？", ["张力太大"]),
    ("产量数据来自哪个省？", ["吉林省"]),
    ("最常用的编程语言是什么？", ["Python和Java"]),
    ("第几章讲机器学习？", ["第１２章", "第12章"]),
    ("《红楼梦》是什么？", ["中国古典小说的巅峰之作"]),
]

ZH_QA_CASES = [
    "exact", "punct", "extra", "partial", "empty", "ascii_space", "wrong", "multiline",
    "fullwidth", "quote", "alt", "repeat",
]


def zh_qa_pred(case, answers, rnd):
    a = answers[0]
    if case == "exact":
        return a
    if case == "punct":
        return "答案：" + a + "。"
    if case == "extra":
        return "根据文章，" + a + "，" + rnd.choice(ZH_SENTENCES)
    if case == "partial":
        return a[: max(1, len(a) // 2)] + "等"
    if case == "empty":
        return ""
    if case == "ascii_space":
        return " ".join(a) + " OK!"
    if case == "wrong":
        return rnd.choice(["不知道", "文中没有提到。", "无法回答"])
    if case == "multiline":
        return a + "\n解释：" + rnd.choice(ZH_SENTENCES)
    if case == "fullwidth":
        return "（" + a + "）！？"
    if case == "quote":
        return "“" + a + "”"
    if case == "alt":
        return answers[-1]
    if case == "repeat":
        return a + a + a
    raise ValueError(case)


def zh_summary(rnd, n):
    return "".join(rnd.choice(ZH_SENTENCES) for _ in range(n))


ZH_ROUGE_CASES = [
    "copy", "shuffle", "drop", "empty", "ascii", "partial", "multiline", "one",
    "nopunct", "mixed", "spaces", "dots",
]


def zh_rouge_pred(case, ref, rnd):
    sents = [s + "。" for s in ref.split("。") if s]
    if case == "copy":
        return ref
    if case == "shuffle":
        rnd.shuffle(sents)
        return "".join(sents)
    if case == "drop":
        return "".join(ch for ch in ref if rnd.random() > 0.25)
    if case == "empty":
        return ""
    if case == "ascii":
        return "The meeting discussed the budget. Summary: OK."
    if case == "partial":
        return sents[0] + rnd.choice(ZH_SENTENCES)
    if case == "multiline":
        return "\n".join(sents) + "\n总结完毕"
    if case == "one":
        return rnd.choice(ref)
    if case == "nopunct":
        return "".join(ch for ch in ref if ch not in "，。：；！？“”")
    if case == "mixed":
        return sents[0] + " version 2.0 的 U盘 T恤衫 3.5 GPT-4 LLaMA 7B。"
    if case == "spaces":
        return "  ".join(sents) + " \r\n "
    if case == "dots":
        return ref.replace("。", ".")
    raise ValueError(case)


# ---------------------------------------------------------- classification

TREC_CLASSES = [
    "Abbreviation", "Expression abbreviated", "Animal", "Organ of body", "Color",
    "Invention, book and other creative piece", "Currency name", "Disease and medicine",
    "Event", "Food", "Musical instrument", "Language", "Letter like a-z", "Other entity",
    "Plant", "Product", "Religion", "Sport", "Element and substance", "Symbols and sign",
    "Techniques and method", "Equivalent term", "Vehicle", "Word with a special property",
    "Definition of something", "Description of something", "Manner of an action", "Reason",
    "Group or organization of persons", "Individual", "Title of a person",
    "Description of a person", "City", "Country", "Mountain", "Other location", "State",
    "Postcode or other code", "Count", "Date", "Distance, linear measure", "Price",
    "Order, rank", "Other number", "Lasting time of somethin", "Percent, fraction", "Speed",
    "Temperature", "Size, area and volume", "Weight",
]

LSHT_CLASSES = [
    "体育", "体育彩票", "财经", "股票", "房产", "家居", "教育", "科技", "时尚", "时政",
    "游戏", "娱乐", "汽车", "军事", "国际", "国内", "社会", "健康", "旅游", "文化",
    "历史", "农业", "IT", "NBA",
]

CLS_CASES = [
    "exact", "two", "superstring", "substring", "none", "multiline", "leading_nl",
    "three", "quirk", "lower", "with_prefix", "empty", "all_sub",
]


def cls_pred(case, truth, classes, rnd, quirk_sets):
    others = [c for c in classes if c != truth]
    if case == "exact":
        return truth
    if case == "two":
        return truth + ", " + rnd.choice(others)
    if case == "three":
        return " / ".join([rnd.choice(others), truth, rnd.choice(others)])
    if case == "superstring":
        sup = [c for c in classes if truth in c and c != truth]
        return (sup[0] if sup else truth) + " " + truth
    if case == "substring":
        sub = [c for c in classes if c in truth and c != truth]
        return (sub[0] + " ") if sub else truth[: max(1, len(truth) // 2)]
    if case == "none":
        return rnd.choice(["I am not sure", "未知", "Type: ?"])
    if case == "multiline":
        return rnd.choice(others) + "\n" + truth
    if case == "leading_nl":
        return "\n\n" + truth + "\nQuestion: what is next?"
    if case == "quirk":
        # Several classes that are substrings of the truth, adjacent in
        # all_classes order, so list.remove skips the next one.
        return " ".join(quirk_sets.get(truth, [truth])) + " " + truth
    if case == "lower":
        return truth.lower()
    if case == "with_prefix":
        return "Type: " + truth + "。"
    if case == "empty":
        return ""
    if case == "all_sub":
        return "".join(c for c in classes if c in truth)
    raise ValueError(case)


# ------------------------------------------------------- retrieval and count

DIGIT_FORMS = {
    "ascii": "0123456789",
    "fullwidth": "０１２３４５６７８９",
    "arabic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
}


def digits(n, form):
    return "".join(DIGIT_FORMS[form][int(c)] for c in str(n))


RET_CASES = [
    "exact", "bare", "two", "wrong", "none", "fullwidth", "arabic", "mixed", "sentence",
    "zero_pad", "empty", "multiline", "superscript", "many",
]


def ret_pred(case, target, rnd, zh):
    lab = "段落" if zh else "Paragraph "
    other = target + rnd.randint(1, 5)
    if case == "exact":
        return lab + str(target)
    if case == "bare":
        return str(target)
    if case == "two":
        return "%s%d or %s%d" % (lab, target, lab, other)
    if case == "wrong":
        return lab + str(other)
    if case == "none":
        return rnd.choice(["I cannot tell.", "无法确定", "Paragraph X"])
    if case == "fullwidth":
        return lab + digits(target, "fullwidth")
    if case == "arabic":
        return lab + digits(target, "arabic") + " (" + str(target) + ")"
    if case == "mixed":
        return "%s%s and %s%s" % (lab, digits(target, "devanagari"), lab, target)
    if case == "sentence":
        return "The summary comes from %s%d, which has 3 parts and 12 lines." % (lab, target)
    if case == "zero_pad":
        return lab + "0" + str(target)
    if case == "empty":
        return ""
    if case == "multiline":
        return "\n%s%d\n%s%d" % (lab, target, lab, other)
    if case == "superscript":
        return lab + str(target) + "²³"
    if case == "many":
        return " ".join(str(rnd.choice([target, other])) for _ in range(7))
    raise ValueError(case)


# ------------------------------------------------------------------ code

CODE_LINES = [
    "        return self.weight * x + self.bias",
    "    if (beans == null) {",
    "\t\tif(beans == null)",
    "for i in range(len(items)):",
    "            result.append(item.strip())",
    "    public static void main(String[] args) {",
    "        var list = new List<string>();",
    "    x = np.zeros((n, m), dtype=np.float32)",
    "    } catch (IOException e) {",
    "        self.assertEqual(response.status_code, 200)",
    "import java.util.HashMap;",
    "        logger.info(\"Loaded %d records\", len(records))",
    "            throw new ArgumentNullException(nameof(value));",
    "    def __init__(self, config):",
    "        return String.format(\"%s:%d\", host, port);",
    "    total += price * quantity  # running sum",
]

CODE_CASES = [
    "exact", "leading_nl", "comment_first", "fence", "slashes", "indent", "rename",
    "long", "empty", "only_comments", "hash_inside", "trailing", "autojunk",
    "similar", "unicode", "blank_first",
]


def code_pred(case, truth, rnd):
    if case == "exact":
        return truth + "\n    pass"
    if case == "leading_nl":
        return "\n\n" + truth + "\nnext_line()"
    if case == "comment_first":
        return "# compute the value\n" + truth
    if case == "fence":
        return "```python\n" + truth + "\n```"
    if case == "slashes":
        return "// TODO: check\n" + truth.strip() + "\n}"
    if case == "indent":
        return truth.strip()
    if case == "rename":
        return truth.replace("e", "x").replace("s", "z")
    if case == "long":
        return truth + " " + "and_more_tokens " * 20
    if case == "empty":
        return ""
    if case == "only_comments":
        return "# a\n// b\n`c`"
    if case == "hash_inside":
        return truth + "  # note\n" + truth[::-1]
    if case == "trailing":
        return truth + "   ;;"
    if case == "autojunk":
        return "  " + " " * rnd.randint(190, 230) + truth.strip()
    if case == "similar":
        w = list(truth)
        for _ in range(3):
            w[rnd.randrange(len(w))] = rnd.choice("abcxyz()")
        return "".join(w)
    if case == "unicode":
        return truth.replace("e", "é") + " 注释"
    if case == "blank_first":
        return "   \n" + truth
    raise ValueError(case)


# ------------------------------------------------------------ stress mode

SOUP = WORDS + [w for q, a in QA for w in (q + " " + " ".join(a)).split()] + [
    "a", "an", "the", "The", "A", "AN", "the_", "_the", ".", ",", "!", "?", "'", '"', "-", "--",
    "(", ")", "[x]", "%", "&", "#", "//", "`", "...", "\n", "\n\n", "\t", "\r\n", "  ", "\u00a0",
    "\u3000", "\x1c", "\x1f", "\x85", "\u2028", "１２", "٣", "०", "²", "½", "Ⅻ", "ΣΑΣ", "Σ", "ς",
    "İ", "ß", "ﬁ", "é", "e\u0301", "Ǆ", "😀", "段落", "Paragraph", "3", "12", "07", "3.5",
]
ZH_SOUP = [w for s in ZH_SENTENCES for w in (s[i:i + 2] for i in range(0, len(s), 2))] + [
    " ", "\n", "。", "，", "、", "！", "？", "：", "“", "”", "《", "》", "—", "…", ".", "7B", "GPT-4",
    "3.14", "50%", "U盘", "吉林", "张力", "ok", "Σ", "１２", "\r\n", "\u3000",
]


def soup(rnd, pool, lo, hi, sep=" "):
    return sep.join(rnd.choice(pool) for _ in range(rnd.randint(lo, hi)))


def stress_record(kind, rnd, all_classes):
    """Random (answers, prediction) for the stress corpus."""
    if kind == "qa":
        return [soup(rnd, SOUP, 1, 8) for _ in range(rnd.randint(1, 3))], soup(rnd, SOUP, 0, 25, rnd.choice([" ", "", "\n"]))
    if kind == "qa_zh":
        return [soup(rnd, ZH_SOUP, 1, 6, "") for _ in range(rnd.randint(1, 2))], soup(rnd, ZH_SOUP, 0, 20, "")
    if kind == "rouge":
        return [soup(rnd, SOUP, 1, 60) for _ in range(rnd.randint(1, 2))], soup(rnd, SOUP, 0, 60)
    if kind == "rouge_zh":
        return [soup(rnd, ZH_SOUP, 1, 80, "")], soup(rnd, ZH_SOUP, 0, 80, "")
    if kind in ("cls", "cls_zh"):
        pool = all_classes + SOUP[:50]
        return [rnd.choice(all_classes)], soup(rnd, pool, 0, 6, rnd.choice([" ", "", "\n", ", "]))
    if kind in ("retrieval", "retrieval_zh", "count"):
        t = rnd.randint(0, 40)
        lab = {"retrieval": "Paragraph ", "retrieval_zh": "段落", "count": ""}[kind]
        nums = [str(rnd.choice([t, t + 1, 0, 10 * t])) if rnd.random() < 0.7 else digits(t, rnd.choice(list(DIGIT_FORMS)))
                for _ in range(rnd.randint(0, 5))]
        return [lab + str(t)], soup(rnd, SOUP[:40] + nums + [lab], 0, 10)
    if kind == "code":
        base = rnd.choice(CODE_LINES)
        p = "".join(c if rnd.random() > 0.15 else rnd.choice("abcxyz ();#`/\n\t") for c in base)
        if rnd.random() < 0.3:
            p = " " * rnd.randint(150, 260) + p
        return [base if rnd.random() < 0.9 else " " * rnd.randint(190, 210) + base], p
    raise ValueError(kind)


# ----------------------------------------------------------------- records

def lengths_for(rnd, n, e):
    if not e:
        return [rnd.randint(500, 30000) for _ in range(n)]
    fixed = [3999, 4000, 7999, 8000, 0, 12000]
    out = fixed + [rnd.choice([rnd.randint(100, 3999), rnd.randint(4000, 7999), rnd.randint(8000, 40000)])
                   for _ in range(n - len(fixed))]
    return out


def build(name, lang, kind, e, rnd, stress=0):
    """Returns (data records, {variant: predictions})."""
    n = stress or (N_E if e else N_V1)
    lengths = lengths_for(rnd, n, e)
    if e and name == "passage_count":
        # An empty 4-8k bucket: eval.py's np.mean([]) is NaN.
        lengths = [L if not 4000 <= L < 8000 else L + 4000 for L in lengths]
    recs, preds = [], {v: [] for v in VARIANTS}
    all_classes = None
    quirk_sets = {}
    if kind == "cls":
        all_classes = list(TREC_CLASSES)
    elif kind == "cls_zh":
        all_classes = list(LSHT_CLASSES)
    if all_classes:
        # Put classes that are substrings of a truth next to each other.
        for t in all_classes:
            subs = [c for c in all_classes if c in t and c != t]
            if subs:
                quirk_sets[t] = subs
    for i in range(n if stress else 0):
        answers = None
        preds_i = []
        for v in VARIANTS:
            a, p = stress_record(kind, rnd, all_classes)
            answers = answers or a
            preds_i.append(p)
        for v, p in zip(VARIANTS, preds_i):
            preds[v].append(p)
        recs.append({"input": "", "context": "", "answers": answers, "length": lengths[i],
                     "dataset": name + ("_e" if e else ""), "language": lang,
                     "all_classes": all_classes, "_id": "%s-stress-%05d" % (name, i)})
    if stress:
        return recs, preds
    for i in range(n):
        ctx, inp = "", ""
        if kind == "qa":
            inp, answers = QA[(i * 7 + len(name)) % len(QA)]
            ctx = "Passage: " + sentence(rnd) + ". The answer is " + answers[0] + "."
            cases = QA_CASES
        elif kind == "qa_zh":
            inp, answers = ZH_QA[(i * 5 + len(name)) % len(ZH_QA)]
            ctx = zh_summary(rnd, 2)
            cases = ZH_QA_CASES
        elif kind == "rouge":
            ref = summary(rnd, rnd.randint(1, 4))
            answers = [ref] if rnd.random() < 0.8 else [ref, summary(rnd, 2)]
            ctx = summary(rnd, 1)
            inp = "" if name != "qmsum" else "Summarize the discussion about the budget."
            cases = ROUGE_CASES
        elif kind == "rouge_zh":
            ref = zh_summary(rnd, rnd.randint(1, 4))
            answers = [ref] if name == "vcsum" or rnd.random() < 0.5 else [ref, zh_summary(rnd, 1)]
            ctx = zh_summary(rnd, 1)
            inp = "" if name == "vcsum" else "会议讨论了什么？"
            cases = ZH_ROUGE_CASES
        elif kind in ("cls", "cls_zh"):
            truth = all_classes[(i * 11 + 3) % len(all_classes)]
            if i % 4 == 0 and quirk_sets:
                truth = sorted(quirk_sets)[(i // 4) % len(quirk_sets)]
            answers = [truth]
            inp = "Question: what is this about ?\nType:" if kind == "cls" else "新闻：某某事件\n类别："
            ctx = "\n".join("Question: q%d\nType: %s" % (k, rnd.choice(all_classes)) for k in range(3))
            cases = CLS_CASES
        elif kind in ("retrieval", "retrieval_zh"):
            target = rnd.randint(1, 30)
            answers = [("段落%d" if kind == "retrieval_zh" else "Paragraph %d") % target]
            inp = sentence(rnd) if kind == "retrieval" else rnd.choice(ZH_SENTENCES)
            ctx = "Paragraph 1: " + sentence(rnd)
            cases = RET_CASES
        elif kind == "count":
            target = rnd.randint(1, 25)
            answers = [str(target)]
            ctx = "Paragraph 1: " + sentence(rnd)
            cases = RET_CASES
        elif kind == "code":
            truth = CODE_LINES[(i * 3 + len(name)) % len(CODE_LINES)]
            answers = [truth]
            if i == n - 1:
                answers = [""]  # "" vs "" scores 100 in fuzz.ratio
            ctx = "def f(x):\n    return x\n"
            cases = CODE_CASES
        else:
            raise ValueError(kind)
        for vi, v in enumerate(VARIANTS):
            case = cases[(i + vi * 5) % len(cases)]
            if kind == "qa":
                p = qa_pred(case, answers, rnd)
            elif kind == "qa_zh":
                p = zh_qa_pred(case, answers, rnd)
            elif kind == "rouge":
                p = rouge_pred(case, answers[0], rnd)
            elif kind == "rouge_zh":
                p = zh_rouge_pred(case, answers[0], rnd)
            elif kind in ("cls", "cls_zh"):
                p = cls_pred(case, answers[0], all_classes, rnd, quirk_sets)
            elif kind in ("retrieval", "retrieval_zh"):
                p = ret_pred(case, target, rnd, kind == "retrieval_zh")
            elif kind == "count":
                p = ret_pred(case, target, rnd, False).replace("Paragraph ", "").replace("段落", "")
            else:
                p = code_pred(case, answers[0] or "x = 1", rnd)
            preds[v].append(p)
        rec = {
            "input": inp,
            "context": ctx,
            "answers": answers,
            "length": lengths[i],
            "dataset": name + ("_e" if e else ""),
            "language": lang,
            "all_classes": all_classes,
            "_id": "%s%s-%03d" % (name, "-e" if e else "", i),
        }
        recs.append(rec)
    # ROUGE's recursive backtrack: predictions of k words that occur in no
    # reference, after one shared word, walk k+2 steps; CPython's frame limit
    # turns the longest into RecursionError (score 0) — around k = 988.
    if kind in ("rouge", "rouge_zh") and not e:
        for k, v in [(986, "a"), (987, "b"), (988, "c"), (989, "a"), (990, "b"), (1200, "c")]:
            idx = (k * 3) % n
            shared = "shared" if kind == "rouge" else "总结"
            recs[idx]["answers"] = [shared + (" end" if kind == "rouge" else "完毕")]
            preds[v][idx] = shared + " " + recursion_words(k, "r")
    return recs, preds


def write_jsonl(path, objs):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "longbench", "testdata", "official"))
    ap.add_argument("--stress", type=int, default=0, metavar="N",
                    help="instead, N random records per data set (random word soup, not committed)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    for sub in ("data", "pred", "pred_e"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(os.path.join(out, "data"))
    for v in VARIANTS:
        os.makedirs(os.path.join(out, "pred", v))
        os.makedirs(os.path.join(out, "pred_e", v))
    counts = {"v1": 0, "e": 0}
    for e in (False, True):
        for name, lang, kind, has_e in DATASETS:
            if e and not has_e:
                continue
            rnd = random.Random("%d/%s/%s" % (args.seed, name, e))
            recs, preds = build(name, lang, kind, e, rnd, args.stress)
            write_jsonl(os.path.join(out, "data", name + ("_e" if e else "") + ".jsonl"), recs)
            for v in VARIANTS:
                write_jsonl(os.path.join(out, "pred_e" if e else "pred", v, name + ".jsonl"), [
                    {"pred": p, "answers": r["answers"], "all_classes": r["all_classes"], "length": r["length"]}
                    for p, r in zip(preds[v], recs)])
            counts["e" if e else "v1"] += len(recs)
    print("wrote %s: %d v1 records (21 sets), %d LongBench-E records (13 sets), %d variants each"
          % (out, counts["v1"], counts["e"], len(VARIANTS)))


if __name__ == "__main__":
    main()
