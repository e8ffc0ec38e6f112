"""The command line end to end, progress in log files, the report in a real browser."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")


def widemm(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "widemm", *map(str, args)],
        capture_output=True, text=True, env=ENV, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An emoji table (image paths relative to its folder, names, numbers) as CSV."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "images").symlink_to(DATA / "emoji" / "images")
    df = pd.read_parquet(DATA / "emoji" / "emoji.parquet")
    df = df[df["category"].isin(["Flags", "Food & Drink", "Smileys & Emotion"])]
    cols = ["image_path", "name", "added_in", "n_skin_variations", "category"]
    df = df[cols].sample(240, random_state=0)
    df[:200].to_csv(folder / "train.csv", index=False)
    df[200:].to_parquet(folder / "new.parquet")
    return folder


@pytest.fixture(scope="module")
def fitted(workdir):
    done = widemm(
        "fit", "train.csv", "--target", "category", "--out", "model",
        "--set", "image_size=32", "--set", "max_epochs=3", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return workdir, done


def test_fit_saves_a_model_its_report_and_held_out_metrics(fitted):
    workdir, done = fitted
    run = json.loads((workdir / "model" / "run.json").read_text())
    assert run["target"] == "category"
    assert run["test_rows"] == 40
    assert run["test_metrics"]["accuracy"] > 0.6
    assert (workdir / "model" / "report.html").stat().st_size > 10_000
    assert "## Evaluation" in (workdir / "model" / "MODEL_CARD.md").read_text()
    # progress on stderr: one line per epoch and a summary, no bars (not a tty)
    assert len(re.findall(r"widemm: epoch \d/3: train_loss", done.stderr)) == 3
    assert "widemm: trained 3 epochs" in done.stderr
    assert "report: model/report.html" in done.stdout


@pytest.mark.slow  # five subprocesses, each loading torch and the model: ~35 s
def test_predict_evaluate_explain_report_info(fitted):
    workdir, _ = fitted
    done = widemm("predict", "model", "new.parquet", "--out", "p.parquet", cwd=workdir)
    assert done.returncode == 0, done.stderr
    pred = pd.read_parquet(workdir / "p.parquet")
    new = pd.read_parquet(workdir / "new.parquet")
    assert pred.index.equals(new.index)
    assert {"prediction", "proba_Flags"} <= set(pred.columns)
    assert (pred["prediction"] == new["category"]).mean() > 0.6

    done = widemm("evaluate", "model", "new.parquet", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 40

    done = widemm(
        "explain", "model", "new.parquet", "--rows", "3", "--out", "e.csv", cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    assert "top columns" in done.stdout
    long = pd.read_csv(workdir / "e.csv")
    assert set(long["column"]) >= {"name", "image_path"}

    done = widemm("report", "model", "--data", "new.parquet", cwd=workdir)
    assert done.returncode == 0, done.stderr
    done = widemm("info", "model", cwd=workdir)
    assert done.returncode == 0
    assert "image_path" in done.stdout
    assert "held-out (40 rows)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "model", "nothing.csv", "--out", "p.csv"], "No file or folder"),
        (["fit", "train.csv", "--target", "nope", "--out", "m"], "'nope' is not a"),
        (["fit", "train.csv", "--target", "category", "--out", "m",
          "--set", "max_epoch=3"], "Did you mean 'max_epochs'"),
        (["fit", "train.csv", "--target", "category", "--target", "nope",
          "--out", "m"], "'nope' is not a"),
        (["predict", "model", "train.csv", "--out", "p.txt"], ".parquet or .csv"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_readable_line(fitted, args, message):
    workdir, _ = fitted
    done = widemm(*args, cwd=workdir)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"widemm {args[0]}: error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_rows_without_their_target_are_dropped_and_counted(tmp_path):
    """`fit` failed ("Input contains NaN", the stratified split); now it says."""
    from widemm.datasets import load_adult

    df = load_adult().sample(200, random_state=0).reset_index(drop=True)
    df.loc[[3, 50, 51], "income"] = None
    df.to_csv(tmp_path / "adult.csv", index=False)
    done = widemm(
        "fit", "adult.csv", "--target", "income", "--out", "m",
        "--set", "max_epochs=1", "--verbose", "0", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    note = "dropped 3 of 200 rows whose 'income' is missing (the first: row 3)"
    assert done.stderr.strip() == f"widemm fit: {note}"
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert run["test_rows"] == 40  # a fifth of the 197 labelled rows
    done = widemm("evaluate", "m", "adult.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 197
    assert done.stderr.strip() == f"widemm evaluate: {note}"


def test_help_shows_examples(tmp_path):
    done = widemm("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "widemm fit data/adult.parquet --target income" in done.stdout


def adult_fit(params: str) -> str:
    """A script fitting WideDeepClassifier(params) on 400 Adult rows, as ``model``."""
    return (
        "from widemm import WideDeepClassifier\n"
        "from widemm.datasets import load_adult\n"
        "df = load_adult().sample(400, random_state=0)\n"
        "y = df.pop('income')\n"
        f"model = WideDeepClassifier({params}).fit(df, y)\n"
    )


def test_a_log_file_gets_a_line_per_epoch_and_a_summary(tmp_path):
    script = adult_fit("max_epochs=4, n_iter_no_change=None, verbose=1")
    with (tmp_path / "fit.log").open("w") as log:
        done = subprocess.run([sys.executable, "-c", script], stderr=log, env=ENV)
    assert done.returncode == 0
    lines = (tmp_path / "fit.log").read_text().splitlines()
    assert [line.split(":")[1] for line in lines[:4]] == [
        f" epoch {e}/4" for e in range(1, 5)
    ]
    assert "valid_roc_auc" in lines[0]
    assert lines[4].startswith("widemm: trained 4 epochs in ")
    assert len(lines) == 5  # nothing else: no bars, no transformers noise


def test_verbose_zero_prints_nothing(tmp_path):
    script = adult_fit("max_epochs=2, verbose=0") + "model.predict(df)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""


@pytest.mark.skipif(
    BROWSER is None,
    reason="no headless Chromium: `make browser` installs Debian's "
    "chromium-headless-shell (make test does when it can)",
)
def test_report_renders_in_a_real_browser(fitted, tmp_path):
    workdir, _ = fitted
    page = (workdir / "model" / "report.html").read_text()
    probe = (
        "<script>document.body.setAttribute('data-images', [...document.images]"
        ".map(i => i.complete && i.naturalWidth > 0).join(','))</script></body>"
    )
    (tmp_path / "probe.html").write_text(page.replace("</body>", probe))
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
         "--dump-dom", (tmp_path / "probe.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    images = re.search(r'data-images="([^"]*)"', done.stdout)
    assert images is not None, done.stderr[-2000:]
    rendered = images.group(1).split(",")
    assert len(rendered) >= 6  # curves, errors, calibration, importance, ...
    assert set(rendered) == {"true"}  # every image decoded, none broken
    assert ":CONSOLE" not in done.stderr  # no console message, error or otherwise
