"""Static guarantees: which paths need the key, how it is compared, no pickle on the serving path,
no calls between services, a non-root container."""

from __future__ import annotations

import ast
import asyncio
import hmac
import re
from pathlib import Path

import pytest

from service.guards import ApiKeyMiddleware, is_json, needs_key
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "method, path, protected",
    [
        ("POST", "/generate", True),
        ("POST", "/walk", True),
        ("POST", "/models", True),
        ("GET", "/generate", True),
        ("POST", "/anything-new", True),  # deny by default: a new endpoint is protected until exempted
        ("POST", "/docs.json", True),
        ("POST", "/ui/", True),
        ("GET", "/livez", False),
        ("GET", "/healthz", False),
        ("GET", "/readyz", False),
        ("GET", "/metrics", False),
        ("GET", "/docs.json", False),
        ("GET", "/", False),
        ("GET", "/ui/", False),
        ("GET", "/ui/app.js", False),
        ("GET", "/uix", True),
        ("OPTIONS", "/generate", False),
    ],
)
def test_which_requests_need_the_key(method, path, protected):
    assert needs_key(method, path) is protected


def test_key_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    guard = ApiKeyMiddleware(app=None, api_key="k" * 40)
    assert guard.authorized(b"Bearer " + b"k" * 40)
    assert not guard.authorized(b"Bearer short")
    assert not guard.authorized(b"Basic " + b"k" * 40)  # compared anyway, then refused for the scheme
    assert not guard.authorized(None)
    # Every check went through compare_digest on fixed-length digests, whatever the token's length.
    assert calls == [(32, 32)] * 4


def test_no_key_means_open():
    assert ApiKeyMiddleware(app=None, api_key=None).authorized(None)


def test_json_media_types():
    assert is_json(None) and is_json(b"application/json") and is_json(b"Application/JSON; charset=utf-8")
    assert is_json(b"application/problem+json")
    assert not is_json(b"text/plain") and not is_json(b"multipart/form-data") and not is_json(b"")


def test_refusals_are_complete_responses():
    sent = []

    async def downstream(scope, receive, send):  # never reached
        raise AssertionError("a refused request reached the app")

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/generate", "headers": []}
    asyncio.run(ApiKeyMiddleware(downstream, api_key="secret")(scope, None, send))
    assert sent[0]["status"] == 401 and sent[1]["body"].startswith(b'{"error": "missing API key"')


# --- no pickle, only ONNX -----------------------------------------------------------------------------

UNSAFE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("joblib", "load"), ("dill", "load"),
    ("cloudpickle", "load"), ("marshal", "loads"), ("yaml", "load"), ("yaml", "unsafe_load"),
}  # fmt: skip


def _service_sources() -> list[Path]:
    sources = sorted((ROOT / "service").rglob("*.py")) + sorted((ROOT / "gancore").rglob("*.py"))
    assert ROOT / "gancore" / "contract" / "noise.py" in sources  # sub-packages are scanned too
    return sources


def test_serving_code_never_unpickles():
    problems = []
    for path in _service_sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(
                    n.split(".")[0] in {"pickle", "dill", "cloudpickle", "joblib", "torch"} for n in names
                ):
                    problems.append(f"{path.name}:{node.lineno} imports {names}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = (owner.id if isinstance(owner, ast.Name) else "", node.func.attr)
                if name in UNSAFE_CALLS:
                    problems.append(f"{path.name}:{node.lineno} calls {'.'.join(name)}")
                if node.func.attr == "load" and name[0] in {"np", "numpy"}:
                    pickle_kw = [k for k in node.keywords if k.arg == "allow_pickle"]
                    if (
                        not pickle_kw
                        or not isinstance(pickle_kw[0].value, ast.Constant)
                        or pickle_kw[0].value.value
                    ):
                        problems.append(f"{path.name}:{node.lineno} calls np.load without allow_pickle=False")
    assert not problems, problems


def test_models_are_read_only_from_onnx_files(tmp_path):
    """Only ``*.onnx`` files are loaded, and by ONNX Runtime's parser: a pickle beside them is ignored, and
    a pickle named ``.onnx`` is refused without ever being unpickled."""
    import pickle
    import shutil

    from gancore.generator import ModelLoadError, load_models

    marker = tmp_path / "unpickled"

    class Payload:  # unpickling this creates the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(ROOT / "models" / "digits-dcgan.onnx", folder / "good.onnx")
    for name in ("evil.pkl", "evil.pt", "good.onnx.bak", "evil.joblib"):
        (folder / name).write_bytes(pickle.dumps(Payload()))
    assert sorted(load_models(folder, ["CPUExecutionProvider"], 1)) == ["good"]
    (folder / "evil.onnx").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelLoadError, match="evil.onnx: not a loadable ONNX model"):
        load_models(folder, ["CPUExecutionProvider"], 1)
    assert not marker.exists()


# --- one service, no inter-service calls --------------------------------------------------------------


def test_the_service_calls_no_other_service(models_dir, monkeypatch):
    """BentoML 1.4's inter-service client fails calls under load (shared/notes/bentoml.md); the design has
    no dependencies, so none of its requests go through that client. Adding one must revisit the load test
    and set ``runner_connection`` on the dependency."""
    monkeypatch.setenv("GANSERVE_MODELS_DIR", str(models_dir))
    from service.service import GanService

    assert GanService.dependencies == {}
    assert not re.search(r"bentoml\.depends\(", "\n".join(p.read_text() for p in _service_sources()))


# --- the container ------------------------------------------------------------------------------------


def test_container_runs_as_non_root():
    dockerfile = ROOT / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("no Dockerfile in this checkout (the container image is built elsewhere)")
    users = re.findall(r"^\s*USER\s+(\S+)", dockerfile.read_text(), flags=re.M | re.I)
    assert users, "the Dockerfile never sets USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the final USER is {users[-1]}"


KEEP_ALIVE = re.compile(r"""--timeout-keep-alive["']?(?:\s*,\s*["']|\s+|=)(\d+)""")


def test_every_way_of_starting_the_server_sets_the_keep_alive():
    """uvicorn's default keep-alive (5 s) equals httpx's idle expiry: under load, clients then reuse
    connections the server is closing and requests fail (README, "Operating it"). Every start command
    passes the flag with a value well above 5 s, the same everywhere."""
    from tests.support.server import KEEP_ALIVE_S

    starts = {"Makefile": (ROOT / "Makefile").read_text()}
    if (ROOT / "Dockerfile").exists():
        starts["Dockerfile"] = (ROOT / "Dockerfile").read_text()
    values = {name: [int(v) for v in KEEP_ALIVE.findall(text)] for name, text in starts.items()}
    for name, found in values.items():
        assert found == [KEEP_ALIVE_S], f"{name}: --timeout-keep-alive values {found}"
    assert KEEP_ALIVE_S >= 30
    # the pattern really reads both spellings (and no stray number)
    assert KEEP_ALIVE.findall('CMD ["serve", "--timeout-keep-alive", "75"]') == ["75"]
    assert KEEP_ALIVE.findall("serve --timeout-keep-alive 75 --port 3075") == ["75"]
    assert KEEP_ALIVE.findall("serve --port 75") == []


def test_the_test_server_keeps_idle_connections_past_the_client_expiry(server):
    """The launcher tests and benchmarks use (``ServeProcess``) really starts uvicorn with the keep-alive:
    a connection idle for longer than uvicorn's 5 s default still answers."""
    import socket
    import time
    from urllib.parse import urlparse

    url = urlparse(server.url)
    request = f"GET /livez HTTP/1.1\r\nHost: {url.hostname}\r\n\r\n".encode()

    def response(sock: socket.socket) -> bytes:
        """One whole response (headers, then Content-Length bytes): a recv may return only part of it."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:  # the server closed the connection
                return data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = next(int(ln.split(b":", 1)[1]) for ln in lines if ln.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += sock.recv(4096)
        return head

    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        assert response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)
        sock.sendall(request)
        assert response(sock).startswith(b"HTTP/1.1 200")  # a closed connection would read b""
