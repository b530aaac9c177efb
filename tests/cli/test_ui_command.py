"""``loopml ui``: starts a local server and says where the UI is, or names a remote server's."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx


def test_ui_serves_the_page_locally(
    loopml_cmd: list[str], free_tcp_port: int, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path)
    with (tmp_path / "ui.log").open("w") as log:
        proc = subprocess.Popen(
            [*loopml_cmd, "ui", "--no-browser", "--port", str(free_tcp_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "loopml UI at" not in (tmp_path / "ui.log").read_text():
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert f"http://127.0.0.1:{free_tcp_port}/" in (tmp_path / "ui.log").read_text()
        page = httpx.get(f"http://127.0.0.1:{free_tcp_port}/")
        assert page.status_code == 200 and '<script type="module" src="/ui/app.js">' in page.text
        assert httpx.get(f"http://127.0.0.1:{free_tcp_port}/ui/app.js").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_ui_names_a_remote_server(loopml_cmd: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(tmp_path), LOOPML_TRACKING_URI="http://models.example:5000")
    done = subprocess.run(
        [*loopml_cmd, "ui", "--no-browser"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "http://models.example:5000/"
