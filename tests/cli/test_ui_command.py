"""``loopml ui``: starts a local server and says where the UI is, or names a remote server's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx


def test_ui_serves_the_page_locally(
    loopml_process: Any, free_tcp_port: int, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path)
    args = ["ui", "--no-browser", "--port", str(free_tcp_port)]
    with loopml_process(args, log=tmp_path / "ui.log", env=env, ready="loopml UI at") as ui:
        assert f"http://127.0.0.1:{free_tcp_port}/" in ui.output()
        page = httpx.get(f"http://127.0.0.1:{free_tcp_port}/")
        assert page.status_code == 200 and '<script type="module" src="/ui/app.js">' in page.text
        assert httpx.get(f"http://127.0.0.1:{free_tcp_port}/ui/app.js").status_code == 200


def test_ui_names_a_remote_server(loopml_cmd: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(tmp_path), LOOPML_TRACKING_URI="http://models.example:5000")
    done = subprocess.run(
        [*loopml_cmd, "ui", "--no-browser"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "http://models.example:5000/"
