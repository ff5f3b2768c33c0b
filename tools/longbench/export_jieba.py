#!/usr/bin/env python3
"""Write the installed Python jieba's HMM model in cppjieba's hmm_model.utf8
layout (at full precision), for `misabench longbench score --jieba-hmm`, and
print the path of its dictionary (dict.txt, usable as --jieba-dict as it is).

misabench's default (gojieba's files, its dictionary edited into jieba
0.42.1's dict.txt) already cuts as jieba 0.42.1 does on the texts tried
(docs/longbench.md); this is for checking that, or for another jieba version.

  python3 tools/longbench/export_jieba.py --out /tmp/jieba_hmm.utf8
"""

import argparse
import os

import jieba
import jieba.finalseg as finalseg

STATES = "BEMS"  # cppjieba's order


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="HMM model file to write")
    args = ap.parse_args()
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("# jieba %s finalseg probabilities: start, transitions, emissions (B E M S)\n" % jieba.__version__)
        f.write(" ".join(repr(finalseg.start_P[s]) for s in STATES) + "\n")
        for s in STATES:
            f.write(" ".join(repr(finalseg.trans_P[s].get(t, -3.14e100)) for t in STATES) + "\n")
        for s in STATES:
            items = finalseg.emit_P[s].items()
            bad = [k for k, _ in items if len(k) != 1 or k in ",:"]
            if bad:
                raise SystemExit("export_jieba: emission keys this layout cannot hold: %r" % bad[:5])
            f.write(",".join("%s:%r" % (k, v) for k, v in items) + "\n")
    print("--jieba-hmm=%s --jieba-dict=%s" % (args.out, os.path.join(os.path.dirname(jieba.__file__), "dict.txt")))


if __name__ == "__main__":
    main()
