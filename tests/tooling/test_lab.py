"""`make lab`, as a reader runs it: JupyterLab on the book's notebooks, with a kernel that imports tlbook."""

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


async def _execute(ws_url: str, code: str) -> str:
    """Run ``code`` in a kernel over Jupyter's websocket protocol; return what it printed."""
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(ws_url)
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    connection.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": session,
                    "date": "",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    printed = []
    while True:
        message = json.loads(await asyncio.wait_for(connection.read_message(), timeout=120))
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            printed.append(message["content"]["text"])
        elif kind == "error":
            printed.append("ERROR " + message["content"]["ename"] + ": " + message["content"]["evalue"])
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            connection.close()
            return "".join(printed)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("make") is None, reason="`make lab` needs make (see the README for the command without it)"
)
def test_make_lab_lists_the_chapters_and_its_kernel_imports_tlbook(tmp_path):
    """It serves the reader's copies of the chapters: a copy already there (edited) is kept, the
    missing ones are copied, and book/ is not touched."""
    lab_dir = tmp_path / "my lab"
    lab_dir.mkdir()
    edited = lab_dir / "ch03_math.ipynb"
    edited.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    before = {p.name: p.stat().st_mtime_ns for p in (ROOT / "book").glob("ch*.ipynb")}
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    lab_args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lab_args += " --allow-root"  # as a reader in a container must (the README says so)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    env.pop("MAKEFLAGS", None)
    server = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_ARGS={lab_args}", f"LAB_DIR={lab_dir}"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"make lab stopped:\n{server.stdout.read()[-3000:]}"
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
            time.sleep(1)

        status, page = _get(f"{base}/lab?token={token}")
        assert status == 200 and "JupyterLab" in page
        listing = json.loads(_get(f"{base}/api/contents?token={token}")[1])
        served = {item["name"] for item in listing["content"]}
        chapters = {p.name for p in (ROOT / "book").glob("ch*.ipynb")}
        assert len(chapters) == 10 and chapters <= served, served  # Chapter 7 has two pages
        assert {p.name for p in lab_dir.glob("ch*.ipynb")} == chapters  # the copies, served from LAB_DIR
        assert '"cells": []' in edited.read_text()  # the reader's edited copy is kept
        assert (lab_dir / "ch09_your_own_photos.ipynb").read_bytes() == (
            ROOT / "book" / "ch09_your_own_photos.ipynb"
        ).read_bytes()
        extensions = json.loads(_get(f"{base}/lab/api/extensions?token={token}")[1])
        names = {e["name"]: e for e in extensions}
        assert names["jupyter-widgets-jupyterlab-manager"]["enabled"], names  # ipywidgets render in the lab

        kernel = json.loads(_get(f"{base}/api/kernels?token={token}", method="POST")[1])
        printed = asyncio.run(
            _execute(
                f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels?token={token}",
                "import os, sys, tlbook; print(sys.prefix); print(tlbook.__file__); "
                "print(os.environ['TF_ENABLE_ONEDNN_OPTS']); print(os.environ['TLBOOK_PROGRESS'])",
            )
        )
        prefix, module, onednn, bars = printed.split()
        assert Path(prefix).resolve() == (ROOT / ".venv").resolve(), printed
        assert Path(module).resolve() == (ROOT / "tlbook" / "__init__.py").resolve(), printed
        assert onednn == "1"  # the Makefile's kernel choice reaches the notebooks
        assert bars == "1"  # a person sees progress bars (make test and make execute turn them off)
        assert {p.name: p.stat().st_mtime_ns for p in (ROOT / "book").glob("ch*.ipynb")} == before
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
