#!/usr/bin/env python3
"""Compare `misabench longbench score` with the official LongBench v1 scorer.

The official side imports LongBench/eval.py (THUDM/LongBench) and calls its
own scorer / scorer_e the way eval.py's main block does (file name up to the
first '.' names the data set; pred, answers, all_classes of the last line and
length read per line). Nothing of metrics.py is restated here. The misabench
side runs `BIN longbench score --format json --samples`. The values compared
are the ones eval.py prints into result.json: round(100 * score, 2) per data
set (LongBench-E: per length bucket). Any difference exits 1 and is listed;
per-sample differences (each sample scored on its own through the same
official scorer) are listed as diagnostics.

Needs Python 3 with jieba, fuzzywuzzy and numpy (Debian: python3-jieba,
python3-fuzzywuzzy, python3-numpy), pltrdy/rouge 1.0.1 (PyPI `rouge`; give
its checkout with --rouge if it is not installed) and six.

fuzzywuzzy's fuzz.ratio (lcc, repobench-p) uses python-Levenshtein when it
is importable and difflib otherwise. LongBench/requirements.txt does not
install it, so the default here (--fuzz difflib) hides it and misabench runs
with its default --fuzz-backend difflib; --fuzz levenshtein needs it
installed and passes --fuzz-backend levenshtein to misabench.

  python3 tools/longbench/check_official.py --longbench LongBench-checkout \\
      --rouge rouge-checkout --misabench bin/misabench \\
      --data longbench/testdata/official/data \\
      --pred longbench/testdata/official/pred/a --pred longbench/testdata/official/pred/b
"""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys


def load_eval(longbench_dir, rouge_dir, fuzz):
    d = longbench_dir
    if not os.path.isfile(os.path.join(d, "eval.py")):
        d = os.path.join(d, "LongBench")
    for f in ("eval.py", "metrics.py"):
        if not os.path.isfile(os.path.join(d, f)):
            sys.exit("check_official: no %s in %s" % (f, longbench_dir))
    if fuzz == "difflib":
        # fuzzywuzzy falls back to difflib when python-Levenshtein is missing.
        sys.modules["Levenshtein"] = None
    if rouge_dir:
        sys.path.insert(0, os.path.abspath(rouge_dir))
    sys.path.insert(0, os.path.abspath(d))  # eval.py does `from metrics import ...`
    import logging
    import jieba
    jieba.setLogLevel(logging.WARNING)
    spec = importlib.util.spec_from_file_location("longbench_eval", os.path.join(d, "eval.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from fuzzywuzzy import fuzz as fz
    backend = "%s.%s" % (fz.SequenceMatcher.__module__, fz.SequenceMatcher.__name__)
    return mod, backend


def frame_depth():
    f, n = sys._getframe(1), 0
    while f is not None:
        n, f = n + 1, f.f_back
    return n


def call_at_eval_depth(fn, *args):
    """Calls fn with the recursion limit moved so that the frames below it
    count as they do under `python eval.py`, where the scorer is called from
    the module frame (depth 1): pltrdy/rouge's recursive LCS backtrack raises
    RecursionError (which rouge_score turns into 0) at a frame count."""
    extra = frame_depth() - 1  # frames above ours that eval.py does not have
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(old + extra)
    try:
        return fn(*args)
    finally:
        sys.setrecursionlimit(old)


def official_dir(ev, path, e):
    """eval.py's main loop for one prediction directory: dataset -> score
    (LongBench-E: dataset -> {bucket: score}), plus per-sample scores."""
    scores, samples = {}, {}
    for filename in sorted(os.listdir(path)):
        if not filename.endswith("jsonl"):
            continue
        predictions, answers, lengths = [], [], []
        all_classes = None
        dataset = filename.split(".")[0]
        with open(os.path.join(path, filename), "r", encoding="utf-8") as f:
            for line in f:
                data = json.loads(line)
                predictions.append(data["pred"])
                answers.append(data["answers"])
                all_classes = data["all_classes"]
                if "length" in data:
                    lengths.append(data["length"])
        if e:
            score = call_at_eval_depth(ev.scorer_e, dataset, predictions, answers, lengths, all_classes)
        else:
            score = call_at_eval_depth(ev.scorer, dataset, predictions, answers, all_classes)
        scores[dataset] = score
        # Diagnostics: every sample alone through the official v1 scorer.
        samples[dataset] = [call_at_eval_depth(ev.scorer, dataset, [p], [a], all_classes)
                            for p, a in zip(predictions, answers)]
    return scores, samples


def printed(v):
    """The value as result.json holds it (json.dump of a float; NaN for an
    empty LongBench-E bucket, which misabench writes as null)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    return json.dumps(float(v))


def py_round2(x):
    return round(x, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--longbench", required=True, help="THUDM/LongBench checkout, or the directory holding eval.py and metrics.py")
    ap.add_argument("--rouge", help="directory to put on sys.path for `from rouge import Rouge` (a pltrdy/rouge checkout)")
    ap.add_argument("--pred", action="append", required=True, help="prediction directory (repeat)")
    ap.add_argument("--data", help="official data directory, passed to misabench --data")
    ap.add_argument("--e", action="store_true", help="LongBench-E (scorer_e, length buckets)")
    ap.add_argument("--misabench", default="misabench", help="misabench binary")
    ap.add_argument("--misabench-arg", action="append", default=[], help="extra argument for misabench longbench score (repeat), e.g. --jieba-dict=FILE")
    ap.add_argument("--fuzz", choices=["difflib", "levenshtein"], default="difflib",
                    help="fuzz.ratio backend on both sides: difflib (LongBench/requirements.txt) or python-Levenshtein")
    ap.add_argument("--max-samples", type=int, default=20, help="per-sample differences to list")
    ap.add_argument("--write-official", metavar="FILE",
                    help="also write the official scores as JSON: {pred dir name: eval.py's result.json}, NaN as null")
    args = ap.parse_args()

    ev, backend = load_eval(args.longbench, args.rouge, args.fuzz)
    if args.fuzz == "levenshtein" and "StringMatcher" not in backend:
        sys.exit("check_official: --fuzz levenshtein, but fuzzywuzzy uses %s (is python-Levenshtein installed?)" % backend)
    print("official: %s (fuzz.ratio backend %s, Python %s)" % (
        os.path.abspath(ev.__file__), backend, sys.version.split()[0]))

    cmd = [args.misabench, "longbench", "score", "--format", "json", "--samples", "--fuzz-backend", args.fuzz]
    if sys.version_info < (3, 11):
        cmd.append("--python310")  # pltrdy/rouge's RecursionError comes one frame earlier
    if args.e:
        cmd.append("--e")
    if args.data:
        cmd += ["--data", args.data]
    for p in args.pred:
        cmd += ["--pred", p]
    cmd += args.misabench_arg
    print("misabench:", " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit("check_official: misabench exited %d" % r.returncode)
    mres = json.loads(r.stdout)
    if len(mres["variants"]) != len(args.pred):
        sys.exit("check_official: misabench returned %d variants for %d --pred" % (len(mres["variants"]), len(args.pred)))

    diffs, sdiffs, compared, nrec = [], [], 0, 0
    written = {}
    for pdir, mv in zip(args.pred, mres["variants"]):
        off, offs = official_dir(ev, pdir, args.e)
        written[os.path.basename(os.path.normpath(pdir))] = off
        mscores = mv["scores"]
        for ds in sorted(set(off) | set(mscores)):
            o, m = off.get(ds), mscores.get(ds)
            if o is None or m is None:
                diffs.append("%s %s: only in %s" % (pdir, ds, "misabench" if o is None else "official"))
                continue
            nrec += m["n"]
            if args.e:
                pairs = [(b, o[b], (m.get("buckets") or {}).get(b)) for b in o]
            else:
                pairs = [("", o, m.get("score"))]
            for b, ov, mv_ in pairs:
                compared += 1
                if printed(ov) != printed(mv_):
                    diffs.append("%s %s%s: official %s, misabench %s" % (pdir, ds, " " + b if b else "", printed(ov), printed(mv_)))
            ms = m.get("samples") or []
            for i, (os_, x) in enumerate(zip(offs[ds], ms)):
                if printed(os_) != printed(py_round2(100 * x)):
                    sdiffs.append("%s %s record %d: official %s, misabench %s" % (pdir, ds, i + 1, printed(os_), printed(py_round2(100 * x))))
            if len(ms) != len(offs[ds]):
                sdiffs.append("%s %s: %d official samples, %d misabench samples" % (pdir, ds, len(offs[ds]), len(ms)))
    if args.write_official:
        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return None if math.isnan(v) else float(v)
        with open(args.write_official, "w", encoding="utf-8") as f:
            json.dump(plain(written), f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
    print("compared %d printed values (%d prediction directories, %d records)" % (compared, len(args.pred), nrec))
    for s in sdiffs[: args.max_samples]:
        print("  sample:", s)
    if len(sdiffs) > args.max_samples:
        print("  ... %d more sample differences" % (len(sdiffs) - args.max_samples))
    for d in diffs:
        print("DIFF", d)
    if diffs or sdiffs:
        print("FAIL: %d printed values and %d samples differ" % (len(diffs), len(sdiffs)))
        sys.exit(1)
    print("OK: every printed value agrees")


if __name__ == "__main__":
    main()
