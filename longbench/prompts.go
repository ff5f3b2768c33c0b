package longbench

import (
	"fmt"
	"strings"
)

// dataset2prompt holds the official prompt templates, one per v1 data set,
// copied from LongBench/config/dataset2prompt.json (THUDM/LongBench @
// 2e00731f, via shared/research/evals.md §A.6) with the original's quirks
// kept: "asconcisely" in narrativeqa, the space before "Answer the question"
// in qasper, the spaces before "\n" (multi_news, lcc, repobench-p) and at
// the end (passage_count, passage_retrieval_en). LongBench-E sets use their
// base key's template (§A.2). pred.py fills them with Python's
// str.format(**record); see Format.
var dataset2prompt = map[string]string{
	"narrativeqa":          "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
	"qasper":               "You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
	"multifieldqa_en":      "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
	"multifieldqa_zh":      "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：",
	"hotpotqa":             "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
	"2wikimqa":             "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
	"musique":              "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
	"dureader":             "请基于给定的文章回答下述问题。\n\n文章：{context}\n\n请基于上述文章回答下面的问题。\n\n问题：{input}\n回答：",
	"gov_report":           "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:",
	"qmsum":                "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:",
	"multi_news":           "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:",
	"vcsum":                "下面有一段会议记录，请你阅读后，写一段总结，总结会议的内容。\n会议记录：\n{context}\n\n会议总结：",
	"trec":                 "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}",
	"triviaqa":             "Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}",
	"samsum":               "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}",
	"lsht":                 "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}",
	"passage_count":        "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ",
	"passage_retrieval_en": "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ",
	"passage_retrieval_zh": "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：",
	"lcc":                  "Please complete the code given below. \n{context}Next line of code:\n",
	"repobench-p":          "Please complete the code given below. \n{context}{input}Next line of code:\n",
}

// noChatTemplate are the data sets pred.py feeds as raw completions even to
// chat models ("chat models are better off without build prompts on these
// tasks", §A.7 step 4): the few-shot and code tasks.
var noChatTemplate = map[string]bool{
	"trec": true, "triviaqa": true, "samsum": true, "lsht": true, "lcc": true, "repobench-p": true,
}

// Template is the official prompt template of a data set (a trailing "_e"
// is accepted).
func Template(name string) (string, error) {
	d, err := Lookup(name)
	if err != nil {
		return "", err
	}
	return dataset2prompt[d.Name], nil
}

// ChatTemplate reports whether pred.py wraps a data set's prompt in the
// model's chat template (build_chat): every data set but trec, triviaqa,
// samsum, lsht, lcc and repobench-p.
func ChatTemplate(name string) bool {
	d, err := Lookup(name)
	return err == nil && !noChatTemplate[d.Name]
}

// BuildPrompt is dataset2prompt[name].format(**record) (§A.7 step 1),
// before truncation and any chat template. The templates use {context}
// and {input}; a record without the field a template names is an error,
// as it is in Python (KeyError).
func BuildPrompt(name string, rec Record) (string, error) {
	tmpl, err := Template(name)
	if err != nil {
		return "", err
	}
	fields := map[string]string{}
	if rec.Context != nil {
		fields["context"] = *rec.Context
	}
	if rec.Input != nil {
		fields["input"] = *rec.Input
	}
	return Format(tmpl, fields)
}

// Format is Python's str.format(**fields) for templates whose replacement
// fields are plain names: "{name}" is replaced by fields[name] (the value is
// inserted as is, never parsed again), "{{" and "}}" are literal braces. As
// in Python, a single "}" or an unclosed "{" is an error, and so is a
// missing name. Positional fields ("{}", "{0}"), attribute and index access,
// conversions ("!r") and format specs (":>8") are not supported: no
// official template uses them.
func Format(tmpl string, fields map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(tmpl))
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"):
			b.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte('}')
			i += 2
		case c == '}':
			return "", fmt.Errorf("format: single '}' encountered in format string at byte %d", i)
		case c == '{':
			end := strings.IndexByte(tmpl[i+1:], '}')
			if end < 0 {
				return "", fmt.Errorf("format: expected '}' before end of string (field at byte %d)", i)
			}
			name := tmpl[i+1 : i+1+end]
			if name == "" || strings.ContainsAny(name, "{.[!:") || strings.Trim(name, "0123456789") == "" {
				return "", fmt.Errorf("format: unsupported replacement field {%s}", name)
			}
			v, ok := fields[name]
			if !ok {
				return "", fmt.Errorf("format: the record has no %q field (KeyError in Python)", name)
			}
			b.WriteString(v)
			i += end + 2
		default:
			j := strings.IndexAny(tmpl[i:], "{}")
			if j < 0 {
				j = len(tmpl) - i
			}
			b.WriteString(tmpl[i : i+j])
			i += j
		}
	}
	return b.String(), nil
}
