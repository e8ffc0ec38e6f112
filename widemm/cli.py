"""The ``widemm`` command line: fit, predict, evaluate, explain, report, info.

Built on the standard library's argparse: no dependency to install, it starts
fast (the heavy imports happen inside each command), and sub-commands with
their own help and examples are all a command line this size needs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXAMPLES = """\
examples:
  widemm fit data/adult.parquet --target income --out adult-model
  widemm fit reviews.csv --target Rating --task regress --out m \\
      --set text_model=sentence-transformers/all-MiniLM-L6-v2 --set max_epochs=5
  widemm predict adult-model new_rows.parquet --out predictions.parquet
  widemm evaluate adult-model test.parquet
  widemm explain adult-model test.parquet --rows 5
  widemm report adult-model --data test.parquet
  widemm info adult-model
  widemm serve adult-model --port 8000     # POST rows to /predict
"""
# Errors in what the user gave (data, options, files): exit code 2, one line.
# widemm raises ValueError for bad data and options; anything else (a TypeError,
# a KeyError) is widemm's own fault and shows its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 bad input, 1 failure)."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        print(f"widemm {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as err:
        if args.debug:
            raise
        print(
            f"widemm {args.command}: failed: {type(err).__name__}: {err} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="widemm",
        description="Wide & deep models on tables of tabular, text and image columns.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog="\n".join(
                line for line in EXAMPLES.splitlines() if f"widemm {name}" in line
            ),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks",
        )
        sub.set_defaults(run=run)
        return sub

    fit = command("fit", _fit, "Train a model on a CSV or parquet file and save it.")
    fit.add_argument("data", help="CSV or parquet file, or a folder of parquet files")
    fit.add_argument(
        "--target",
        action="append",
        required=True,
        help="target column; give it several times for one multi-task model",
    )
    fit.add_argument("--out", required=True, help="folder to save the model in")
    fit.add_argument(
        "--task",
        choices=("auto", "classify", "regress"),
        default="auto",
        help="auto: regress a continuous numeric target, else classify",
    )
    fit.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="rows held out to evaluate and report on (0 for none; not for folders)",
    )
    fit.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an estimator option, value as JSON or text (e.g. max_epochs=5)",
    )
    fit.add_argument("--random-state", type=int, default=0)
    fit.add_argument("--verbose", type=int, default=1, help="0 silent, 1 per epoch")

    predict = command("predict", _predict, "Predict rows with a saved model.")
    predict.add_argument("model", help="folder of a saved model")
    predict.add_argument("data", help="CSV or parquet file")
    predict.add_argument("--out", required=True, help=".parquet or .csv to write")

    evaluate = command("evaluate", _evaluate, "Score a saved model on labelled rows.")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--target", help="target column (default: the fit one)")

    explain = command("explain", _explain, "Attribute predictions to columns.")
    explain.add_argument("model")
    explain.add_argument("data")
    explain.add_argument("--rows", type=int, default=5, help="first N rows")
    explain.add_argument("--method", choices=("gradient", "permutation"))
    explain.add_argument("--out", help="long-form table (.parquet or .csv) to write")

    report = command("report", _report, "Write report.html and MODEL_CARD.md.")
    report.add_argument("model")
    report.add_argument("--data", help="labelled rows to evaluate and explain")

    info = command("info", _info, "Describe a saved model.")
    info.add_argument("model")

    serve = command("serve", _serve, "Serve a saved model over HTTP (FastAPI).")
    serve.add_argument("model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="processes, each with the model"
    )
    return parser


def read_table(path: str | Path) -> Any:
    """Read a CSV or parquet file (or a folder of parquet files) into a DataFrame."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No file or folder at {path}.")
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"{path}: read .csv or .parquet files (or a parquet folder).")


def write_table(frame: Any, path: str | Path) -> None:
    """Write a DataFrame to a .parquet or .csv file (by its suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path)
    elif path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path)
    else:
        raise ValueError(f"--out {path}: write a .parquet or .csv file.")


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes KEY=VALUE, got {text!r}.")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _fit(args: argparse.Namespace) -> None:
    from sklearn.model_selection import train_test_split
    from sklearn.utils.multiclass import type_of_target

    from widemm import WideDeepClassifier, WideDeepMultiTask, WideDeepRegressor

    targets, data = list(args.target), Path(args.data)
    frame = None if data.is_dir() else read_table(data)
    for target in targets:
        if frame is not None and target not in frame.columns:
            raise ValueError(f"--target {target!r} is not a column of {data}.")
    task = "multitask" if len(targets) > 1 else args.task
    if task == "auto":
        sample = (frame if frame is not None else read_table(data))[targets[0]]
        kind = type_of_target(sample.dropna())
        task = "regress" if kind == "continuous" else "classify"
    cls = {"regress": WideDeepRegressor, "classify": WideDeepClassifier}.get(
        task, WideDeepMultiTask
    )
    target = targets[0] if len(targets) == 1 else targets
    options = dict(_option(o) for o in args.set)
    known = cls().get_params()
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"--set {key}: {cls.__name__} has no such option.{hint}")
    root = str(data if data.is_dir() else data.parent)
    params = {"random_state": args.random_state, "verbose": args.verbose}
    model = cls(**{**params, "image_root": root, **options})
    test = None
    if frame is None:  # a folder: streamed, nothing held out
        model.fit(str(data), target)
    else:
        frame, y = _labelled(frame.drop(columns=target), frame[target], args.command)
        if args.test_fraction > 0:
            stratify = y if task == "classify" and y.value_counts().min() > 1 else None
            frame, test_X, y, test_y = train_test_split(
                frame,
                y,
                test_size=args.test_fraction,
                stratify=stratify,
                random_state=args.random_state,
            )
            test = (test_X, test_y)
        model.fit(frame, y)
    out = Path(args.out)
    model.save(out)
    run: dict[str, Any] = {"target": target, "data": str(data), "task": task}
    metrics: dict[str, float] = {}
    if test is not None:
        metrics = run["test_metrics"] = model.scores(*test)
        run["test_rows"] = len(test[1])
    (out / "run.json").write_text(json.dumps(run, indent=1))
    model.report(out, data=test)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"saved to {out}" + (f"; held-out {shown}" if shown else ""))
    print(f"report: {out / 'report.html'}")


def _load(folder: str) -> tuple[Any, dict[str, Any]]:
    import widemm

    model = widemm.load(folder)
    run_file = Path(folder) / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    return model, run


def _rows(model: Any, data: str, target: str | None = None) -> tuple[Any, Any]:
    """Read ``data``'s rows (images resolved against its folder) and target."""
    frame = read_table(data)
    if "image" in model.pipeline_.preprocessors_:
        model.pipeline_.preprocessors_["image"].set_params(root=str(Path(data).parent))
    y = None
    names = [target] if isinstance(target, str) else list(target or [])
    if names and set(names) <= set(frame.columns):
        y = frame[target]
        frame = frame.drop(columns=names)
    return frame, y


def _labelled(X: Any, y: Any, command: str) -> tuple[Any, Any]:
    """Keep the rows whose target is known, saying how many were not.

    A model of several targets keeps every row: a missing value is masked out
    of that target's loss and scores only.
    """
    import pandas as pd

    from widemm.validation import plain

    if not isinstance(y, pd.Series) or not y.isna().any():
        return X, y
    missing = y.isna().to_numpy()
    print(
        f"widemm {command}: dropped {missing.sum()} of {len(y)} rows whose "
        f"{y.name!r} is missing (the first: row {plain(y.index[missing][0])})",
        file=sys.stderr,
    )
    return X[~missing], y[~missing]


def _predict(args: argparse.Namespace) -> None:
    model, run = _load(args.model)
    X, _ = _rows(model, args.data, run.get("target"))
    out = model.outputs_.table(model.logits(X), X.index)
    write_table(out, args.out)
    print(f"{len(out)} predictions written to {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    model, run = _load(args.model)
    target = args.target or run.get("target")
    if target is None:
        raise ValueError("Name the target column: --target COL.")
    X, y = _rows(model, args.data, target)
    if y is None:
        raise ValueError(f"Target column {target!r} is not in {args.data}.")
    X, y = _labelled(X, y, args.command)
    print(json.dumps({"rows": len(y), **model.scores(X, y)}, indent=1))


def _explain(args: argparse.Namespace) -> None:
    model, run = _load(args.model)
    X, _ = _rows(model, args.data, run.get("target"))
    options = {"method": args.method} if args.method else {}
    explanation = model.explain(X.head(args.rows), **options)
    print(explanation)
    if args.out:
        write_table(explanation.to_frame(), args.out)


def _report(args: argparse.Namespace) -> None:
    model, run = _load(args.model)
    data = None
    if args.data:
        data = _rows(model, args.data, run.get("target"))
        if data[1] is None:
            raise ValueError(f"{args.data} has no target column {run.get('target')!r}.")
        data = _labelled(*data, args.command)
    path = model.report(args.model, data=data)
    print(f"report: {path}")


def _info(args: argparse.Namespace) -> None:
    model, run = _load(args.model)
    lines = [f"{type(model).__name__}, trained {len(model.history_)} epochs"]
    if run:
        lines.append(f"target {run['target']!r} from {run['data']}")
    if "test_metrics" in run:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in run["test_metrics"].items())
        lines.append(f"held-out ({run['test_rows']} rows): {metrics}")
    lines += ["", str(model.schema_)]
    print("\n".join(lines))
    print(textwrap.indent(repr(model), "  "))


def _serve(args: argparse.Namespace) -> None:
    from widemm.serve import serve

    serve(args.model, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
