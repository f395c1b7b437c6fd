"""A real OpenAI-compatible chat-completions server on 127.0.0.1 that answers from a script, for the LLM tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


def answer(content: object, delay: float = 0.0):
    """A scripted reply: 200 with `content` (a dict is sent as its JSON text)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return lambda body: (200, completion(text), delay)


def failure(status: int, message: str = "scripted failure"):
    return lambda body: (status, {"error": {"message": message, "type": "server_error", "code": None}}, 0.0)


def rejecting(*answer_formats: str, then):
    """A server that answers 400 to the `response_format` types it does not support, else `then`."""

    def reply(body):
        if body.get("response_format", {}).get("type") in answer_formats:
            return failure(400, f"response_format {body['response_format']['type']} is not supported")(body)
        return then(body)

    return reply


class ScriptedServer:
    """POST /v1/chat/completions answered by the next reply of `script`; every request body is kept."""

    def __init__(self) -> None:
        self.script: list = []
        self.bodies: list[dict] = []
        self.authorizations: list[str | None] = []
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads, self.httpd.block_on_close, self.httpd.scripted = True, False, self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reply_to(self, body: dict) -> tuple[int, dict, float]:
        self.bodies.append(body)
        return self.script.pop(0)(body) if self.script else failure(500, "the test script ran out")(body)

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the stdlib's name)
        scripted = self.server.scripted
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scripted.authorizations.append(self.headers.get("Authorization"))
        status, payload, delay = (404, {"error": {"message": "no such path"}}, 0.0)
        if self.path == "/v1/chat/completions":
            status, payload, delay = scripted.reply_to(body)
        scripted.stopping.wait(delay)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def log_message(self, *args) -> None:
        pass
