"""The documentation: a short README whose code runs, pages whose code runs, an API
reference entry for every public name, examples that run (on a few rows)."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import widemm

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SNIPPET = re.compile(r'^--8<-- "(.+)"$', re.M)


def code_blocks(page: Path) -> list[str]:
    """The page's Python blocks, with the files they include (``--8<--``) read in."""
    text = SNIPPET.sub(lambda m: (ROOT / m[1]).read_text(), page.read_text())
    return BLOCK.findall(text)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True
    )


def test_the_readme_is_short_and_its_code_is_the_quickstart_that_runs():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 150
    (block,) = code_blocks(readme)
    example = (ROOT / "examples" / "quickstart.py").read_text()
    body = example.split('"""', 2)[2].lstrip()  # the file without its docstring
    assert block == body  # it runs in the getting-started test below


@pytest.mark.parametrize("page", ["getting-started.md", "index.md"])
def test_every_code_block_of_the_first_pages_runs(page, tmp_path):
    blocks = code_blocks(ROOT / "docs" / page)
    assert blocks
    if page == "index.md":  # the quickstart again: run once, on the other page
        assert blocks == code_blocks(ROOT / "docs" / "getting-started.md")[:1]
        return
    outputs = []
    for code in blocks:
        done = run(code, tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert "capital-gain" in outputs[0]
    assert "'roc_auc'" in outputs[0]
    assert (tmp_path / "adult-model" / "widemm.json").exists()


def test_every_public_name_has_an_api_reference_entry():
    entries = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        entries |= set(re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M))
    documented = set()
    for entry in entries:
        module, _, name = entry.rpartition(".")
        try:
            documented.add(id(getattr(importlib.import_module(module), name)))
        except (ImportError, AttributeError, ValueError):
            importlib.import_module(entry)  # a module's page: it must import
    missing = [n for n in widemm.__all__ if id(getattr(widemm, n)) not in documented]
    assert not missing


@pytest.mark.parametrize("example", ["reviews", "emoji", "explain"])
def test_examples_run_on_a_few_rows(example, tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{example}.py"), "--smoke"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_the_wheel_installs_and_the_quickstart_runs_outside_the_checkout(tmp_path):
    # The wheel as users get it, in a fresh virtualenv. Its dependencies come from
    # this environment (a path on sys.path, not a site dir: the editable checkout
    # stays out), after checking this environment satisfies what the wheel asks.
    import sysconfig
    from importlib.metadata import version

    from packaging.requirements import Requirement

    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("widemm-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    metadata = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print('\\n'.join(m.requires('widemm')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for line in metadata:
        requirement = Requirement(line)
        if requirement.marker is None:  # the core dependencies
            assert requirement.specifier.contains(version(requirement.name))
    work = tmp_path / "user"
    work.mkdir()
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import widemm; print(widemm.__file__, widemm.__version__)",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(site)  # the wheel's copy, not the checkout
    assert where.split()[1] == widemm.__version__
    assert (Path(site) / "widemm" / "py.typed").exists()
    quickstart = (ROOT / "examples" / "quickstart.py").read_text()
    done = subprocess.run(
        [str(python), "-c", quickstart], cwd=work, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cli = subprocess.run(
        [str(venv / "bin" / "widemm"), "info", "adult-model"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "WideDeepClassifier" in cli.stdout
