"""Explicit ratings: MultiTaskMF's regression head against scikit-surprise on one seeded split of MovieLens.

Split: ``np.random.default_rng(0).random(n) < 0.8`` over the rows of ``ratings.csv`` is train, the rest test (test
pairs whose user or movie is absent from train are dropped, and counted). Models:

* MultiTaskMF defaults: ``MultiTaskMF(tasks=[Task("rating", kind="regression")], random_state=0)``;
* MultiTaskMF built-in tuner: ``SuccessiveHalvingSearch`` on a validation split it carves from train;
* MultiTaskMF with the penalty of the first form (``row_regularization=0``, ``bias_regularization=None``): what
  the defaults were before issue 13;
* surprise ``SVD()``, ``SVDpp()`` and ``BaselineOnly()`` with their defaults (``random_state=0`` where it exists),
  and the global mean.

Also: ``--validation`` scores the candidate penalties on a validation split carved from train (seeded 1/8 of the
training rows), the table that chose ``row_regularization`` and ``bias_regularization``; the test split is not read
then.

Usage::

    python benchmarks/ratings.py                       # the test table
    python benchmarks/ratings.py --validation          # the choice of the penalties
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def load(path):
    df = pd.read_csv(os.path.join(path, "ratings.csv"))
    train = np.random.default_rng(0).random(len(df)) < 0.8
    return df[train], df[~train]


def to_data(df):
    from mtl_classic import MultiTaskData
    return MultiTaskData.from_events(pd.DataFrame({"user": df.userId, "item": df.movieId, "task": "rating",
                                                   "value": df.rating}), value_col="value")


def metrics(pred, y):
    return {"RMSE": float(np.sqrt(np.mean((pred - y) ** 2))), "MAE": float(np.mean(np.abs(pred - y)))}


def ours(params, train_df, test_df):
    from mtl_classic import MultiTaskMF, Task
    data = to_data(train_df)
    t0 = time.perf_counter()
    model = MultiTaskMF(tasks=[Task("rating", kind="regression")], random_state=0, **params).fit(data)
    seconds = time.perf_counter() - t0
    return model.predict("rating", test_df.userId.values, test_df.movieId.values), seconds, model


def tuner(train_df, test_df):
    from mtl_classic import MultiTaskMF, Task
    from mtl_classic.model_selection import SuccessiveHalvingSearch
    data = to_data(train_df)
    space = {"factors": [16, 32, 64, 128], "row_regularization": [0.03, 0.05, 0.1, 0.15, 0.2],
             "bias_regularization": [1.0, 2.0, 5.0, 10.0, 20.0]}
    t0 = time.perf_counter()
    search = SuccessiveHalvingSearch(MultiTaskMF(tasks=[Task("rating", kind="regression")], random_state=0),
                                     target="rating", space=space, n_candidates=16, show_progress=False).fit(data)
    seconds = time.perf_counter() - t0
    pred = search.best_estimator_.predict("rating", test_df.userId.values, test_df.movieId.values)
    return pred, seconds, search


def surprise_models(train_df, test_df):
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp
    trainset = Dataset.load_from_df(train_df[["userId", "movieId", "rating"]],
                                    Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    out = {}
    for name, algo in (("surprise SVD()", SVD(random_state=0)), ("surprise SVDpp()", SVDpp(random_state=0)),
                       ("surprise BaselineOnly()", BaselineOnly(verbose=False))):
        t0 = time.perf_counter()
        algo.fit(trainset)
        seconds = time.perf_counter() - t0
        pred = np.array([algo.predict(u, i).est for u, i in zip(test_df.userId, test_df.movieId)])
        out[name] = (pred, seconds)
        C.log(f"{name}: RMSE {metrics(pred, test_df.rating.values)['RMSE']:.4f} ({seconds:.1f}s)")
    return out


def known(train_df, test_df):
    keep = test_df.userId.isin(set(train_df.userId)) & test_df.movieId.isin(set(train_df.movieId))
    return test_df[keep], int((~keep).sum())


#: the candidates of ``--validation`` (row_regularization, bias_regularization)
PENALTIES = [(0.0, None), (0.05, 5.0), (0.07, 2.0), (0.07, 5.0), (0.1, 2.0), (0.1, 5.0), (0.1, 10.0), (0.15, 2.0),
             (0.15, 5.0), (0.15, 10.0), (0.2, 5.0)]


def validation_table(train_df):
    fit_rows = np.random.default_rng(1).random(len(train_df)) < 0.875
    vtrain = train_df[fit_rows]
    vtest, dropped = known(vtrain, train_df[~fit_rows])
    rows = []
    for row_reg, bias_reg in PENALTIES:
        pred, seconds, _ = ours({"row_regularization": row_reg, "bias_regularization": bias_reg}, vtrain, vtest)
        m = metrics(pred, vtest.rating.values)
        rows.append({"row_regularization": row_reg, "bias_regularization": bias_reg, **m, "fit s": seconds})
        C.log(f"val row_regularization={row_reg} bias_regularization={bias_reg}: RMSE {m['RMSE']:.4f}")
    md = ["# Choosing the rating penalties on validation", "", C.environment_markdown(C.environment()), "",
          f"Validation: a seeded 1/8 of the training rows (`default_rng(1)`), {len(vtest)} ratings ({dropped} "
          f"dropped: user or movie unseen). One regression task, every other setting at its default.", "",
          C.markdown_table(rows, ["row_regularization", "bias_regularization", "RMSE", "MAE", "fit s"],
                           {"fit s": ".1f"})]
    return "\n".join(md), {"rows": rows, "n_val": len(vtest), "dropped": dropped}


def main(argv=None):
    from mtl_classic.datasets import MOVIELENS_DIR
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings-dir", default=str(MOVIELENS_DIR),
                   help="directory with ratings.csv (default: the embedded ml-latest-small)")
    p.add_argument("--out", default=C.DEFAULT_OUT)
    p.add_argument("--validation", action="store_true", help="the penalties' validation table instead")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    train_df, test_df = load(args.ratings_dir)
    if args.validation:
        md, payload = validation_table(train_df)
        C.write_outputs(args.out, "ratings_validation", md, payload)
        return
    test_df, dropped = known(train_df, test_df)
    y = test_df.rating.values
    rows, payload = [], {}

    def add(name, pred, seconds, extra=None):
        m = metrics(pred, y)
        rows.append({"model": name, **m, "fit s": seconds, **(extra or {})})
        payload[name] = {**m, "fit_seconds": seconds, **(extra or {})}
        C.log(f"{name}: RMSE {m['RMSE']:.4f} MAE {m['MAE']:.4f} ({seconds:.1f}s)")

    pred, seconds, model = ours({}, train_df, test_df)
    train_pred = model.predict("rating", train_df.userId.values, train_df.movieId.values)
    add("MultiTaskMF defaults", pred, seconds, {"train RMSE": metrics(train_pred, train_df.rating.values)["RMSE"]})
    pred, seconds, model = ours({"row_regularization": 0.0, "bias_regularization": None}, train_df, test_df)
    train_pred = model.predict("rating", train_df.userId.values, train_df.movieId.values)
    add("MultiTaskMF, first-form penalty (row_regularization=0)", pred, seconds,
        {"train RMSE": metrics(train_pred, train_df.rating.values)["RMSE"]})
    pred, seconds, search = tuner(train_df, test_df)
    add("MultiTaskMF built-in tuner", pred, seconds, {"chosen": str(search.best_params_)})
    for name, (pred, seconds) in surprise_models(train_df, test_df).items():
        add(name, pred, seconds)
    add("global mean", np.full(len(y), train_df.rating.mean()), 0.0)
    md = ["# Explicit ratings (MovieLens ml-latest-small)", "", C.environment_markdown(C.environment()), "",
          f"Split: `np.random.default_rng(0).random(n) < 0.8` is train ({len(train_df)} ratings); test "
          f"{len(y)} ratings ({dropped} dropped: user or movie unseen in train).", "",
          C.markdown_table(rows, ["model", "RMSE", "MAE", "train RMSE", "fit s", "chosen"], {"fit s": ".1f"})]
    C.write_outputs(args.out, "ratings", "\n".join(md), {"n_train": len(train_df), "n_test": len(y),
                                                         "dropped": dropped, "models": payload})


if __name__ == "__main__":
    main()
