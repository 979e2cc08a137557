"""The cold-movie and cold-user parts of ``side.py`` over several draws: one row per results file, and the means.

Reads ``results/side.json`` (draw 0) and ``results/side-seed<N>/side.json``; runs nothing. Run the draws first::

    python benchmarks/side.py --out benchmarks/results
    for n in 1 2 3 4 5; do python benchmarks/side.py --seed $n --out benchmarks/results/side-seed$n; done
    python benchmarks/side_draws.py --out benchmarks/results
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

OURS, POPULARITY, PEER = 0, 1, 4   # rows of side.py's cold table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=C.DEFAULT_OUT)
    args = p.parse_args(argv)
    files = [os.path.join(args.out, "side.json")] + sorted(glob.glob(os.path.join(args.out, "side-seed*", "side.json")))
    rows, user_rows = [], []
    for path in files:
        with open(path) as fh:
            doc = json.load(fh)
        cold = doc["cold"]
        rows.append({"draw": doc["args"]["seed"], "ours": cold[OURS]["ndcg@10"], "genre popularity":
                     cold[POPULARITY]["ndcg@10"], "cmfrec": cold[PEER]["ndcg@10"],
                     "ours / genre popularity": cold[OURS]["ndcg@10"] / cold[POPULARITY]["ndcg@10"],
                     "ours / cmfrec": cold[OURS]["ndcg@10"] / cold[PEER]["ndcg@10"],
                     "file": os.path.relpath(path, args.out), "library": doc["environment"]["library_commit"]})
        if len(cold) > PEER + 1:    # genres at weight 1, the side tasks' default before 037cf30 (files from then on)
            rows[-1]["ours, weight 1"] = cold[PEER + 1]["ndcg@10"]
        users = doc["cold_users"]
        if len(users) >= 3:     # ours from tags, the average user, popularity (files before 422b191 lack the middle)
            user_rows.append({"draw": doc["args"]["seed"], "ours, from tags": users[0]["ndcg@10"],
                              "the average user": users[1]["ndcg@10"], "popularity": users[2]["ndcg@10"],
                              "file": os.path.relpath(path, args.out), "library": rows[-1]["library"]})
            if len(users) > 3:  # tags with confidences (alpha=10), from 2026-12-07's second session on
                user_rows[-1]["ours, tags with confidences"] = users[3]["ndcg@10"]
            if len(users) > 4:  # tags at weight 1, the default before 037cf30
                user_rows[-1]["ours, tags at weight 1"] = users[4]["ndcg@10"]
    rows.sort(key=lambda r: r["draw"])
    user_rows.sort(key=lambda r: r["draw"])
    user_cols = ["ours, from tags", "the average user", "popularity"]
    if user_rows and all("ours, tags with confidences" in r for r in user_rows):
        user_cols.insert(1, "ours, tags with confidences")
    if user_rows and all("ours, tags at weight 1" in r for r in user_rows):
        user_cols.insert(2, "ours, tags at weight 1")
    user_means = {k: sum(r[k] for r in user_rows) / len(user_rows) for k in user_cols} if user_rows else {}
    mean_cols = ["ours", "genre popularity", "cmfrec"] + (["ours, weight 1"] if rows and all(
        "ours, weight 1" in r for r in rows) else [])
    means = {k: sum(r[k] for r in rows) / len(rows) for k in mean_cols}
    summary = {"draws": len(rows), **{f"mean {k}": v for k, v in means.items()},
               "ours / genre popularity, of the means": means["ours"] / means["genre popularity"],
               "ours / cmfrec, of the means": means["ours"] / means["cmfrec"],
               "draws where genre popularity wins": sum(r["ours"] < r["genre popularity"] for r in rows),
               "draws where cmfrec wins": sum(r["ours"] < r["cmfrec"] for r in rows),
               "cold user draws": len(user_rows), **{f"cold users mean {k}": v for k, v in user_means.items()},
               "cold user draws where popularity wins": sum(r["ours, from tags"] < r["popularity"] for r in user_rows)}
    cols = ["draw", "ours", *mean_cols[3:], "genre popularity", "cmfrec", "ours / genre popularity", "ours / cmfrec",
            "file", "library"]
    md = ["# Cold movies over several draws (side.py)", "", C.environment_markdown(C.environment()), "",
          "NDCG@10 of the cold movies per draw (`side.py --seed N`), from the files named; the last row holds the "
          "means.", "",
          C.markdown_table(rows + [{"draw": "mean", **means,
                                    "ours / genre popularity": summary["ours / genre popularity, of the means"],
                                    "ours / cmfrec": summary["ours / cmfrec, of the means"], "file": "-",
                                    "library": "-"}], cols)]
    if user_rows:
        md += ["", "Cold users (half of the taggers held out, folded in from their tags alone; every movie ranked): "
               "NDCG@10 per draw; the last row holds the means.", "",
               C.markdown_table(user_rows + [{"draw": "mean", **user_means, "file": "-", "library": "-"}],
                                ["draw"] + user_cols + ["file", "library"])]
    C.write_outputs(args.out, "side_draws", "\n".join(md), {"rows": rows, "user_rows": user_rows,
                                                            "summary": summary})


if __name__ == "__main__":
    main()
