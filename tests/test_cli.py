"""The command line: help texts, and a clear one-line error when the paper's data are missing."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sklegc import datasets
from sklegc.__main__ import build_parser, main
from sklegc.experiments import cli

ROOT = Path(__file__).resolve().parents[1]


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


@pytest.mark.parametrize("parser", [build_parser(), cli.build_parser()],
                         ids=["sklegc", "sklegc.experiments"])
def test_every_option_of_every_command_has_help_text(parser):
    options = [(sub.prog, action) for sub in _parsers(parser)
               for action in sub._actions if action.option_strings]
    assert len(options) >= 10
    missing = [(prog, action.option_strings) for prog, action in options
               if not (action.help and action.help.strip())]
    assert missing == []


def test_help_is_plain_text(capsys):
    for argv in (["--help"], ["demo", "--help"], ["reproduce", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text and ":data:" not in text
    # Every command is described, the subcommands with their own description.
    assert all(sub.description for sub in _parsers(build_parser()))


def _reproduce(tmp_path, *args, env_data_dir=None):
    env = {k: v for k, v in os.environ.items() if k != datasets.DATA_DIR_ENV}
    if env_data_dir is not None:
        env[datasets.DATA_DIR_ENV] = str(env_data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "sklegc", "reproduce",
                           "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_reproduce_without_data_is_one_line_on_stderr_and_status_2(tmp_path):
    # titanic and vowel have no OpenML fallback, so no network is involved.
    done = _reproduce(tmp_path, "--datasets", "titanic", "vowel", "digits")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("sklegc reproduce: error: missing dataset file(s) ")
    for name in datasets.DATA_FILES["titanic"] + datasets.DATA_FILES["vowel"]:
        assert name in line
    assert "--data-dir" in line and datasets.DATA_DIR_ENV in line
    assert "no data folder given" in line
    assert "titanic and vowel have no OpenML copy" in line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_reproduce_names_the_folder_it_looked_in(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    done = _reproduce(tmp_path, "--datasets", "vowel", env_data_dir=empty)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"looked in {empty}" in done.stderr and "vowel.csv" in done.stderr
    assert "titanic" not in done.stderr


def test_reproduce_reports_a_failed_openml_fallback(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "fetch_openml", offline)
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    status = main(["reproduce", "--datasets", "cancer", "iris3f", "titanic",
                   "--out", str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "cancer.csv" in captured.err and "iris.csv" in captured.err
    assert ("the OpenML fallback for cancer and iris3f failed (OSError: network is unreachable)"
            in captured.err)
    assert "titanic has no OpenML copy" in captured.err
    assert not (tmp_path / "out").exists()


def test_reproduce_goes_ahead_when_the_data_loads(monkeypatch, tmp_path):
    # digits needs no file: the check passes and the run starts (stopped at its first step).
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sklegc.experiments.runner.run_cells", stop)
    assert main(["reproduce", "--datasets", "digits", "--out", str(tmp_path), "--quick",
                 "--no-progress"]) == 130
