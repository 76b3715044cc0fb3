"""Run the page's own JavaScript modules (web/js) under Node, so unit tests can compare what
the page computes with what the server computes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

WEB_JS = Path(__file__).resolve().parents[2] / "web" / "js"


def run_venue_script(tmp_path: Path, script: str, *args: str):
    """``script`` (an ES module body: ``process.argv[1]`` is venue.js's URL, the rest ``args``)
    run on a copy of the page's modules marked as ES modules; its printed JSON, parsed."""
    node = shutil.which("node")
    if node is None:
        # Node ships with the machines this project runs on; elsewhere the comparison is
        # skipped, but CI must run it
        if os.environ.get("CI"):
            pytest.fail("node is not installed, and CI must compare the page's code with the server's")
        pytest.skip("node is not installed: the page's own code cannot be run")
    modules = tmp_path / "js"
    shutil.copytree(WEB_JS, modules)
    (modules / "package.json").write_text('{"type": "module"}')
    ran = subprocess.run([node, "--input-type=module", "-e", script, (modules / "venue.js").as_uri(), *args],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)
