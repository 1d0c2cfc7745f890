"""Every stage script says its usage in one line when dvc.yaml's cmd and the script disagree
on the arguments (a stage renamed or an output added on one side only)."""

from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT, env


def test_a_wrong_count_of_arguments_is_the_usage_line(tmp_path):
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in stages:
        done = subprocess.run(
            [sys.executable, str(ROOT / "stages" / f"{name}.py"), "only-one"],
            cwd=ROOT,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        wanted = " ".join(stages[name]["cmd"].split()[1:2])  # python stages/NAME.py …
        assert done.returncode == 1, (name, done.stderr)
        assert done.stderr.startswith(f"{name}: error: usage: python {wanted} "), done.stderr
        assert done.stderr.endswith("(1 arguments given)\n"), done.stderr
        # the usage names as many arguments as dvc.yaml's cmd passes
        named = done.stderr.split(wanted)[1].split("(")[0].split()
        assert len(named) == len(stages[name]["cmd"].split()) - 2, (name, named)
