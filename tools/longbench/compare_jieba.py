#!/usr/bin/env python3
"""Compare misabench's jieba port with Python jieba's accurate mode.

LongBench's metrics.py segments Chinese with jieba.cut(s, cut_all=False)
(HMM left at its default, True). This cuts every input text with it and with
`misabench longbench cut` (the segmenter `longbench score` uses), and reports
how many texts are cut identically and the token-level agreement: the share
of Python's tokens (as character spans) that misabench also produced, and the
reverse. Exits 1 if any text is cut differently.

Inputs: --text FILE (each non-blank line is a text), --jsonl FILE (each line
an object: its "text" string, or its "pred" string and "answers" list, as in
LongBench prediction files), --debian (the Chinese lines of Debian's
fortunes-zh and manpages-zh packages and of the zh_CN gettext catalogs
installed, through msgunfmt), --random N (N random strings mixing jieba
dictionary words, random Han characters, Latin, digits, Unicode digits,
punctuation and whitespace). Needs Python jieba (Debian: python3-jieba).

  python3 tools/longbench/compare_jieba.py --misabench bin/misabench \\
      --jsonl longbench/testdata/official/pred/a/dureader.jsonl --text my_sentences.txt
"""

import argparse
import json
import logging
import subprocess
import sys


def read_texts(args):
    texts = []
    for path in args.text or []:
        with open(path, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    for path in args.jsonl or []:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                o = json.loads(line)
                if "text" in o:
                    texts.append(o["text"])
                else:
                    texts.append(o["pred"])
                    texts += list(o.get("answers") or [])
    return texts


def debian_texts():
    """Distinct Chinese lines of fortunes-zh, manpages-zh (troff markup
    stripped roughly) and the zh_CN gettext catalogs, in a fixed order."""
    import glob
    import gzip
    import re
    han = re.compile("[\u4e00-\u9fd5]")
    out, seen = [], set()

    def add(line):
        line = line.strip()
        if len(line) >= 4 and han.search(line) and line not in seen:
            seen.add(line)
            out.append(line)
    for f in sorted(glob.glob("/usr/share/games/fortunes/*.u8")):
        for line in open(f, encoding="utf-8", errors="replace"):
            if line.strip() != "%":
                add(line)
    for f in sorted(glob.glob("/usr/share/man/zh_CN/man*/*.gz")):
        try:
            txt = gzip.open(f).read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in txt.splitlines():
            if line.startswith((".", "'")):
                line = re.sub(r"^\.(SH|SS|TP|IP|B|I|BR|BI|IR|RB|RI|IB|PP|LP|P|HP|TH)\b\s*", "", line)
                if line.startswith("."):
                    continue
            line = re.sub(r"\\f[BIRP]|\\f\(..|\\\(..|\\-|\\&|\\e|\\ |\\\*\(..|\\\*.",
                          lambda m: {"\\-": "-", "\\ ": " "}.get(m.group(0), ""), line)
            add(line.replace('"', ""))
    mos = sorted(glob.glob("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo") +
                 glob.glob("/usr/share/vim/vim*/lang/zh_CN.UTF-8/LC_MESSAGES/*.mo"))
    for f in mos:
        r = subprocess.run(["msgunfmt", f], capture_output=True, text=True, errors="replace")
        for line in r.stdout.splitlines():
            m = re.match(r'msgstr(\[\d\])? "(.*)"$', line) or re.match(r'"(.*)"$', line)
            if m:
                add(m.group(m.lastindex).replace("\\n", " ").replace("\\t", " ").replace('\\"', '"'))
    return out


def random_texts(n, seed=7):
    import os
    import random
    import jieba
    rnd = random.Random(seed)
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as f:
        words = [line.split(" ")[0] for line in f]
    pieces = list("abcXYZ0123456789+#&._%-") + [
        " ", "\r\n", "\n", "\t", "\u3000", "\u00a0", "\r", "１２３", "٣", "½", "²", "。", "，", "、",
        "！", "?", "😀", "é", "e\u0301", "Σ", "ﬁ", "\u2028", "\x1c", "丶", "\u9fd6", "\u9fff", "\u3400",
        "\U00020000", ".5", "3.14", "50%", "v1.2.3"]
    out = []
    for i in range(n):
        s = "".join(rnd.choice(words) if rnd.random() < 0.5 else rnd.choice(pieces)
                    for _ in range(rnd.randint(1, 30)))
        if i % 3 == 0:  # runs of single Han characters go through the HMM
            s += "".join(chr(rnd.randint(0x4E00, 0x9FD5)) for _ in range(rnd.randint(1, 8)))
        out.append(s)
    return out


def spans(tokens):
    out, i = set(), 0
    for t in tokens:
        out.add((i, i + len(t)))
        i += len(t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", action="append", help="text file, one text per line (repeat)")
    ap.add_argument("--jsonl", action="append", help="JSONL file of {\"text\"} or {\"pred\", \"answers\"} objects (repeat)")
    ap.add_argument("--debian", action="store_true", help="add the Chinese lines of fortunes-zh, manpages-zh and zh_CN gettext catalogs")
    ap.add_argument("--random", type=int, default=0, metavar="N", help="add N random mixed strings")
    ap.add_argument("--misabench", default="misabench", help="misabench binary")
    ap.add_argument("--misabench-arg", action="append", default=[], help="extra argument for misabench longbench cut (repeat), e.g. --jieba-dict=FILE")
    ap.add_argument("--show", type=int, default=10, help="differing texts to print")
    args = ap.parse_args()

    import jieba
    jieba.setLogLevel(logging.WARNING)
    texts = read_texts(args)
    if args.debian:
        texts += debian_texts()
    texts += random_texts(args.random)
    if not texts:
        sys.exit("compare_jieba: no texts")
    py = [list(jieba.cut(t, cut_all=False)) for t in texts]
    inp = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    r = subprocess.run([args.misabench, "longbench", "cut"] + args.misabench_arg,
                       input=inp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit("compare_jieba: misabench exited %d" % r.returncode)
    go = [json.loads(line) for line in r.stdout.splitlines()]
    if len(go) != len(texts):
        sys.exit("compare_jieba: %d texts, %d misabench lines" % (len(texts), len(go)))

    same = pt = gt = both = 0
    shown = 0
    for t, p, g in zip(texts, py, go):
        ps, gs = spans(p), spans(g)
        pt, gt, both = pt + len(ps), gt + len(gs), both + len(ps & gs)
        if p == g:
            same += 1
        elif shown < args.show:
            shown += 1
            print("DIFF %s\n  python    %s\n  misabench %s" % (json.dumps(t, ensure_ascii=False),
                  "/".join(p), "/".join(g)))
    print("texts %d, cut identically %d (%.3f%%); tokens: python %d, misabench %d, "
          "same spans %d (%.4f%% of python's, %.4f%% of misabench's)" % (
              len(texts), same, 100.0 * same / len(texts), pt, gt, both,
              100.0 * both / max(pt, 1), 100.0 * both / max(gt, 1)))
    sys.exit(0 if same == len(texts) else 1)


if __name__ == "__main__":
    main()
