"""Whole-coder out-of-fold micro-F1 of the retrieval coder on a coded corpus.

`claimcoder retrieval learn` reports the out-of-fold F1 of its learned score alone; the coder
then adds rules (history codes, links, catch-alls, lay injuries ...). This script measures the
whole coder the same way: the corpus in ``--folds`` folds (document i in fold i mod k), evidence
learned on the other folds (`claimcoder retrieval learn`, as the packaged artifact is), each
held-out document coded with it. Prints micro precision, recall and F1, writes them to
``bench/results/oof.json``.

    python -m bench.eval_oof /path/to/codiesp/train.jsonl --text-field text_en \\
        --codes-field codes_billable_fy2026 --release 2026-04

About 5 minutes for CodiEsp train on 2 cores.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from worker.coders.retrieval.coder import RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings

RESULTS = Path(__file__).resolve().parent / "results" / "oof.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="JSON lines, one coded document a line")
    parser.add_argument("--text-field", default="text_en")
    parser.add_argument("--codes-field", default="codes_billable_fy2026")
    parser.add_argument("--release", default="2026-04", help="code-set release to code in")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    lines = args.corpus.read_text(encoding="utf-8").splitlines()
    tp = fp = fn = 0
    with tempfile.TemporaryDirectory(prefix="claimcoder-oof-") as tmp:
        for k in range(args.folds):
            train = Path(tmp) / f"train{k}.jsonl"
            train.write_text(
                "\n".join(line for i, line in enumerate(lines) if i % args.folds != k) + "\n",
                encoding="utf-8",
            )
            artifact = Path(tmp) / f"fold{k}.json.gz"
            subprocess.run(
                [
                    *(sys.executable, "-m", "worker", "retrieval", "learn", str(train)),
                    *("--out", str(artifact), "--text-field", args.text_field),
                    *("--codes-field", args.codes_field, "--release", args.release),
                    *("--name", f"fold{k}", "--credit", "out-of-fold evaluation"),
                ],
                check=True,
                capture_output=True,
            )
            coder = RetrievalCoder(RetrievalSettings(artifact=artifact))
            coder.load()
            for i, line in enumerate(lines):
                if i % args.folds != k:
                    continue
                document = json.loads(line)
                gold = {code.replace(".", "") for code in document[args.codes_field]}
                found = set(coder.code_one(document[args.text_field], release=args.release).codes)
                tp += len(gold & found)
                fp += len(found - gold)
                fn += len(gold - found)
            print(f"fold {k + 1}/{args.folds} done", file=sys.stderr)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report = {
        "corpus": args.corpus.name,
        "folds": args.folds,
        "documents": len(lines),
        "micro_precision": round(precision, 4),
        "micro_recall": round(recall, 4),
        "micro_f1": round(f1, 4),
    }
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
