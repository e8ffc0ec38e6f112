import json
import subprocess
import sys

import numpy as np
import pytest

import widemm
from widemm import WideDeepClassifier, WideDeepRegressor
from widemm.datasets import load_adult


@pytest.fixture(scope="module")
def saved(tmp_path_factory, adult_xy_module):
    X, y = adult_xy_module
    model = WideDeepClassifier(
        max_epochs=2, random_state=0, crossed_cols=[("education", "occupation")]
    ).fit(X, y)
    path = tmp_path_factory.mktemp("model")
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def adult_xy_module():

    df = load_adult().sample(1500, random_state=2)
    return df.drop(columns="income"), df["income"]


def test_saved_folder_holds_no_pickle(saved):
    _, path = saved
    files = sorted(p.name for p in path.iterdir())
    assert files == ["model.safetensors", "widemm.json"]  # no report: model.report
    for p in path.iterdir():
        assert not p.read_bytes().startswith(b"\x80")  # pickle protocol 2+ header
    json.loads((path / "widemm.json").read_text())


def test_load_in_new_process_predicts_identically(saved, adult_xy_module, tmp_path):
    model, path = saved
    X, _ = adult_xy_module
    X.to_parquet(tmp_path / "X.parquet")
    code = (
        "import sys, numpy as np, pandas as pd, widemm;"
        "m = widemm.load(sys.argv[1]); X = pd.read_parquet(sys.argv[2]);"
        "np.save(sys.argv[3], m.predict_proba(X))"
    )
    out = tmp_path / "proba.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "X.parquet"), str(out)],
        check=True,
    )
    np.testing.assert_array_equal(np.load(out), model.predict_proba(X))


def test_loaded_estimator_keeps_params_and_fitted_state(saved):
    model, path = saved
    loaded = widemm.load(path)
    assert type(loaded) is WideDeepClassifier
    assert loaded.get_params() == model.get_params()
    assert loaded.schema_ == model.schema_
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.history_.equals(model.history_)


def test_regressor_round_trip(tmp_path, adult_xy_module):
    X = adult_xy_module[0].copy()  # the module's rows stay whole for the others
    y = X.pop("hours-per-week")
    model = WideDeepRegressor(max_epochs=1, scaling="standard", random_state=0).fit(
        X, y
    )
    model.save(tmp_path)
    np.testing.assert_array_equal(widemm.load(tmp_path).predict(X), model.predict(X))


def test_load_refuses_unknown_classes_and_bad_folders(saved, tmp_path):
    _, path = saved
    config = json.loads((path / "widemm.json").read_text())
    config["estimator"]["__object__"] = "os.system"
    (tmp_path / "widemm.json").write_text(json.dumps(config))
    weights = (path / "model.safetensors").read_bytes()  # the digest still matches
    (tmp_path / "model.safetensors").write_bytes(weights)
    with pytest.raises(ValueError, match=r"unknown class 'os\.system'"):
        widemm.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a saved widemm model"):
        widemm.load(tmp_path / "nothing")


def test_save_rejects_callable_params(adult_xy_module, tmp_path):
    from widemm.models import TabMLP

    X, y = adult_xy_module
    model = WideDeepClassifier(tab_model=TabMLP, max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="not callables"):
        model.save(tmp_path)


# ------------------------------------------------------------ saves that cannot tear
@pytest.fixture(scope="module")
def two_models(adult_xy_module):
    """The same columns refitted on other rows: the same shapes, other weights."""
    X, y = adult_xy_module
    options = dict(max_epochs=1, random_state=0, trees=False)
    old = WideDeepClassifier(**options).fit(X[:700], y[:700])
    new = WideDeepClassifier(**options).fit(X[700:1400], y[700:1400])
    return old, new, X[1400:]


def assert_old_new_or_refused(path, old, new, rows):
    """Loading ``path`` gives exactly the old or the new predictions, or refuses."""
    try:
        loaded = widemm.load(path)
    except (ValueError, FileNotFoundError):
        return "refused"
    got = loaded.predict_proba(rows)
    for name, model in (("old", old), ("new", new)):
        if np.array_equal(got, model.predict_proba(rows)):
            return name
    raise AssertionError("a mix of two saves loaded without error")


def test_a_save_broken_off_at_any_step_is_old_new_or_refused(
    two_models, tmp_path, monkeypatch
):
    from widemm import persistence

    old, new, rows = two_models
    real_replace, outcomes = persistence.os.replace, set()
    for stop in range(3):  # before the first rename, between them, after both
        path = tmp_path / f"m{stop}"
        old.save(path)
        calls = []

        def replace(src, dst, calls=calls, stop=stop):
            if len(calls) == stop:
                raise OSError("killed")
            calls.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(persistence.os, "replace", replace)
        if stop < 2:
            with pytest.raises(OSError, match="killed"):
                new.save(path)
        else:
            new.save(path)
        monkeypatch.setattr(persistence.os, "replace", real_replace)
        outcomes.add(assert_old_new_or_refused(path, old, new, rows))
    assert outcomes == {"old", "refused", "new"}


def test_weights_from_another_save_are_refused(two_models, tmp_path):
    old, new, _ = two_models
    old.save(tmp_path / "old")
    new.save(tmp_path / "new")
    weights = (tmp_path / "new" / "model.safetensors").read_bytes()
    (tmp_path / "old" / "model.safetensors").write_bytes(weights)
    with pytest.raises(ValueError, match=r"not the file widemm\.json was saved with"):
        widemm.load(tmp_path / "old")


KILLER = """
import sys, widemm
model = widemm.load(sys.argv[1])
print("ready", flush=True)
model.save(sys.argv[2])
print("saved", flush=True)
"""


@pytest.mark.slow
def test_a_save_killed_at_random_points_never_loads_a_mix(two_models, tmp_path):
    """50 saves over an existing folder, each SIGKILLed after a random delay."""
    import os
    import random
    import signal
    import time

    old, new, rows = two_models
    new.save(tmp_path / "new")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    outcomes = []
    for attempt in range(50):
        target = tmp_path / f"t{attempt}"
        old.save(target)
        process = subprocess.Popen(
            [sys.executable, "-c", KILLER, str(tmp_path / "new"), str(target)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(random.Random(attempt).uniform(0, 0.08))
        process.send_signal(signal.SIGKILL)
        process.wait()
        outcomes.append(assert_old_new_or_refused(target, old, new, rows))
    assert "old" in outcomes  # some kills came before the save ended


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        ("estimator", "tab_model", "os.system"),
        ("estimator", "fusion", "builtins.eval"),
        ("estimator", "image_model", "os.system"),
        ("estimator", "scaling", "os.system"),
        ("pipeline", "tab_model", "os.system"),
        ("pipeline", "trees", "os.system"),
        ("estimator", "text_model", "CUSTOM"),
    ],
)
def test_load_checks_parameters_as_fit_does(saved, tmp_path, where, field, value):
    _, path = saved
    if value == "CUSTOM":  # a model folder that would run its own code
        value = str(tmp_path / "custom")
        (tmp_path / "custom").mkdir()
        config = {"model_type": "bert", "auto_map": {"AutoModel": "mine.Model"}}
        (tmp_path / "custom" / "config.json").write_text(json.dumps(config))
    config = json.loads((path / "widemm.json").read_text())
    estimator = config["estimator"]
    target = (
        estimator
        if where == "estimator"
        else (estimator["state"]["__dict__"]["pipeline_"])
    )
    target["params"]["__dict__"][field] = value
    folder = tmp_path / "tampered"
    folder.mkdir()
    (folder / "widemm.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(
        (path / "model.safetensors").read_bytes()
    )
    with pytest.raises(ValueError, match=field):
        widemm.load(folder)


def test_save_and_report_leave_the_matplotlib_backend_and_figures(
    saved, adult_xy_module, tmp_path
):
    # As in a notebook: a backend chosen, a figure open. The report used to
    # switch the process to Agg (inline plots stopped showing after a save).
    _, path = saved
    X, y = adult_xy_module
    X.tail(40).assign(income=y.tail(40)).to_parquet(tmp_path / "rows.parquet")
    script = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import pandas as pd
import widemm
plt.figure()
model = widemm.load({str(path)!r})
model.save({str(tmp_path / "copy")!r})
rows = pd.read_parquet({str(tmp_path / "rows.parquet")!r})
data = rows.drop(columns="income"), rows["income"]
page = model.report({str(tmp_path / "copy")!r}, data=data)
print(matplotlib.get_backend(), plt.get_fignums(), page.stat().st_size > 10_000)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["svg", "[1]", "True"]
