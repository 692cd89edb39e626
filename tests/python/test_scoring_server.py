"""The amlc scoring server (amlc_scoring.server) against its HTTP contract, as a real subprocess."""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the asset tree

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import uuid

from _support import Server, python_env, raw_exchange, read_response, stream_request, wait_for

BASIC = r'''
import json, os, time
from azureml.core.model import Model

def init():
    global model_path
    model_path = Model.get_model_path("mymodel")
    with open(os.path.join(os.environ["AML_APP_ROOT"], "inits.log"), "a") as f:
        f.write("%d\n" % os.getpid())
    print("user init done")

def run(data, request_headers):
    if data.startswith("{"):
        d = json.loads(data)
        if d.get("fail"):
            raise RuntimeError("boom from run")
        if "sleep" in d:
            time.sleep(d["sleep"])
        if "str" in d:
            return d["str"]
        if d.get("bytes"):
            return b"raw-bytes"
        if d.get("unserializable"):
            return {"x": object()}
        if d.get("numpy_like"):
            class Arr:
                def tolist(self):
                    return [1, 2]
            return {"arr": Arr()}
    return {"pid": os.getpid(), "data": data, "custom": request_headers.get("X-Custom"),
            "custom_lower": request_headers.get("x-custom"), "model": open(model_path).read(),
            "cwd": os.getcwd()}
'''

SWAGGER2 = json.dumps({"swagger": "2.0", "info": {"title": "user swagger", "version": "7"}, "paths": {}})


class BasicServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(BASIC, files={"azureml-models/mymodel/3/model.txt": "weights-v3",
                                       "swagger2.json": SWAGGER2},
                         env={"AZUREML_MODEL_DIR": "azureml-models/mymodel/3", "SCORING_TIMEOUT_MS": "3000"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_health(self):
        r = self.srv.request("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"Healthy")

    def test_startup_logs_show_init(self):
        out, _ = self.srv.logs()
        self.assertIn("amlc scoring server starting", out)
        self.assertIn("user init done", out)
        self.assertIn("init() succeeded", out)

    def test_score_post_passes_body_as_str_and_headers(self):
        r = self.srv.request("POST", "/score", body=b'{"data": [[1, 2]]}',
                             headers={"Content-Type": "application/json", "X-Custom": "hello"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        out = r.json()
        self.assertEqual(out["data"], '{"data": [[1, 2]]}')
        self.assertEqual(out["custom"], "hello")
        self.assertEqual(out["custom_lower"], "hello")
        self.assertEqual(out["model"], "weights-v3")  # Model.get_model_path resolved the single file
        self.assertEqual(os.path.realpath(out["cwd"]), os.path.realpath(self.srv.root))
        self.assertIn("x-ms-run-fn-exec-ms", r.headers)
        float(r.headers["x-ms-run-fn-exec-ms"])

    def test_score_get_passes_query_args_as_json(self):
        r = self.srv.request("GET", "/score?a=1&b=two&a=3")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.json()["data"]), {"a": "1", "b": "two"})
        r = self.srv.request("GET", "/score")
        self.assertEqual(json.loads(r.json()["data"]), {})

    def test_returned_str_is_json_encoded_again(self):
        r = self.srv.request("POST", "/score", body=json.dumps({"str": json.dumps({"y": 1})}))
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.json()), {"y": 1})
        r = self.srv.request("POST", "/score", body=json.dumps({"bytes": True}))
        self.assertEqual(r.json(), "raw-bytes")

    def test_unserializable_and_numpy_like_results(self):
        r = self.srv.request("POST", "/score", body=b'{"numpy_like": true}')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"arr": [1, 2]})
        r = self.srv.request("POST", "/score", body=b'{"unserializable": true}')
        self.assertEqual(r.status, 500)
        self.assertIn("message", r.json())
        wait_for(lambda: "not JSON serializable" in self.srv.logs()[1], 30, what="the error on stderr")

    def test_run_exception_gives_500_message_and_traceback_in_log(self):
        r = self.srv.request("POST", "/score", body=b'{"fail": true}')
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json(), {"message": "An unexpected error occurred in scoring script. "
                                               "Check the logs for more info."})
        self.assertEqual(r.headers.get("x-ms-run-function-failed"), "True")
        wait_for(lambda: "boom from run" in self.srv.logs()[1], 30, what="the traceback on stderr")
        self.assertIn("Traceback", self.srv.logs()[1])
        self.assertEqual(self.srv.request("POST", "/score", body=b"x").status, 200)

    def test_timeout_gives_500_and_the_worker_recovers(self):
        r = self.srv.request("POST", "/score", body=b'{"sleep": 8}')
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json(), {"message": "Scoring timeout after 3000 ms"})
        r2 = self.srv.request("POST", "/score", body=b'{"sleep": 0.01}')
        self.assertEqual(r2.status, 200)
        self.assertEqual(r2.json()["pid"], self.srv.request("POST", "/score", body=b"x").json()["pid"])

    def test_request_ids(self):
        r = self.srv.request("GET", "/")
        uuid.UUID(r.headers["x-request-id"])  # generated
        self.assertEqual(r.headers["x-ms-request-id"], r.headers["x-request-id"])
        r = self.srv.request("POST", "/score", body=b"x", headers={"x-request-id": "my-id-1",
                                                                    "x-ms-client-request-id": "client-7"})
        self.assertEqual(r.headers["x-request-id"], "my-id-1")
        self.assertEqual(r.headers["x-ms-client-request-id"], "client-7")
        r = self.srv.request("POST", "/score", body=b"x", headers={"x-request-id": "a" * 101}, fresh=True)
        self.assertEqual(r.status, 431)
        self.assertIn("message", r.json())
        r = self.srv.request("POST", "/score", body=b"x", headers={"x-request-id": "a" * 100})
        self.assertEqual(r.status, 200)

    def test_methods_and_unknown_paths(self):
        for m in ("PUT", "DELETE", "PATCH"):
            r = self.srv.request(m, "/score", body=b"")
            self.assertEqual(r.status, 405, m)
            self.assertIn("message", r.json())
        self.assertEqual(self.srv.request("OPTIONS", "/score").status, 200)
        r = self.srv.request("GET", "/nope")
        self.assertEqual(r.status, 404)
        self.assertIn("message", r.json())
        self.assertEqual(self.srv.request("POST", "/", body=b"").status, 405)

    def test_not_allowed_names_the_method_and_the_allowed_ones(self):
        for path, allow in (("/score", "GET, POST, OPTIONS"), ("/", "GET, HEAD, OPTIONS"),
                            ("/swagger.json", "GET, HEAD")):
            r = self.srv.request("DELETE", path)
            self.assertEqual(r.status, 405, path)
            self.assertEqual(r.headers["allow"], allow, path)
            self.assertEqual(r.json(), {"message": "Method DELETE is not allowed on %s" % path})

    def test_user_swagger_file(self):
        r = self.srv.request("GET", "/swagger.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["info"]["title"], "user swagger")
        r = self.srv.request("GET", "/swagger.json?version=3")  # no swagger3.json: generated
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["openapi"][:2], "3.")
        self.assertEqual(self.srv.request("GET", "/swagger.json?version=9").status, 404)

    def test_keep_alive_and_pipelining(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        pids = set()
        for i in range(5):
            conn.request("POST", "/score", body=str(i))
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual(body["data"], str(i))
            pids.add(body["pid"])
        conn.close()
        two = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nonePOST /score HTTP/1.1\r\n"
               b"Host: x\r\nContent-Length: 3\r\n\r\ntwo")
        out = raw_exchange(self.srv.port, two, expect_responses=2)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 2, out)
        self.assertLess(out.index(b'"data": "one"'), out.index(b'"data": "two"'))

    def test_chunked_body_and_expect_continue(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        conn.request("POST", "/score", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        self.assertEqual(json.loads(r.read())["data"], "abcdef")
        conn.close()
        req = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        import socket
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        try:
            s.sendall(req)
            first = s.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue"), first)
            s.sendall(b"hello")
            rest = b""
            while b'"hello"' not in rest:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.assertIn(b"HTTP/1.1 200 OK", rest)
        finally:
            s.close()

    def test_large_body_and_body_limit(self):
        big = b"x" * (3 * 1024 * 1024)
        r = self.srv.request("POST", "/score", body=big, fresh=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()["data"]), len(big))
        out = raw_exchange(self.srv.port, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                           % (100 * 1024 * 1024 + 1), read_until_close=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)
        self.assertIn(b'"message"', out)

    def test_http10_closes_after_response(self):
        out = raw_exchange(self.srv.port, b"GET / HTTP/1.0\r\n\r\n", read_until_close=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"), out)
        self.assertIn(b"Connection: close", out)
        self.assertTrue(out.endswith(b"Healthy"))
        out = raw_exchange(self.srv.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", read_until_close=True)
        self.assertTrue(out.endswith(b"Healthy"))

    def test_malformed_request_gives_400(self):
        out = raw_exchange(self.srv.port, b"garbage\r\n\r\n", read_until_close=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)

    def test_every_malformed_request_line_or_header_gets_an_answer(self):
        chunked = b"POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        cases = [
            (b"GET  HTTP/1.1\r\n\r\n", 400),                      # empty request target
            (b"GET / HTTP/1.1 \r\n\r\n", 400),
            (b"GET noslash HTTP/1.1\r\n\r\n", 400),
            (b"G\x00T / HTTP/1.1\r\n\r\n", 400),
            (b"GET /\x01 HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n: no-name\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nno-colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"POST /score HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n0123456789", 400),
            (b"POST /score HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", 400),
            (b"POST /score HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
            (b"POST /score HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST /score HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST /score HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST /score HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
            (chunked + b"0x3\r\nabc\r\n0\r\n\r\n", 400),
            (chunked + b"3\r\nabcXX0\r\n\r\n", 400),             # chunk data not followed by CRLF
            (chunked + b"-3\r\nabc\r\n0\r\n\r\n", 400),
            (chunked + b"11111111111111111\r\n", 400),          # 17 hex digits
            (chunked + b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
        ]
        for req, status in cases:
            out = raw_exchange(self.srv.port, req, read_until_close=True, timeout=30)
            self.assertTrue(out.startswith(b"HTTP/1.1 %d " % status), (req[:80], out[:200]))
            head, _, body = out.partition(b"\r\n\r\n")
            self.assertIn(b"\r\nConnection: close", head, req[:80])
            self.assertIn(b"\r\nContent-Length: %d" % len(body), head, req[:80])
            self.assertIn("message", json.loads(body), req[:80])
        self.assertEqual(self.srv.request("GET", "/", fresh=True).status, 200)
        self.assertNotIn("internal error", self.srv.logs()[1])

    def test_tolerated_request_forms(self):
        # Bare LF line ends and an empty line before the request line are accepted (RFC 9112 2.2).
        for req in (b"GET / HTTP/1.1\n\n", b"\r\nGET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nX-A:\r\n\r\n",
                    b"GET / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab",
                    b"OPTIONS * HTTP/1.1\r\n\r\n", b"GET http://host:5001/?x=1 HTTP/1.1\r\n\r\n"):
            out = raw_exchange(self.srv.port, req, timeout=30)
            status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None
            self.assertIn(status, (200, 404), (req, out[:200]))
        out = raw_exchange(self.srv.port, b"GET http://host:5001/ HTTP/1.1\r\n\r\n", timeout=30)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"Healthy"), out)

    def test_init_ran_once(self):
        with open(os.path.join(self.srv.root, "inits.log")) as f:
            self.assertEqual(len(f.read().split()), 1)


RAW = r'''
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@rawhttp
def run(request):
    if request.method == "GET":
        return AMLResponse("got " + request.full_path + " a=" + str(request.args.get("a")), 200,
                           {"X-Extra": "yes"})
    if request.path == "/score" and request.headers.get("content-type", "").startswith("application/json"):
        body = request.get_json()
        if body.get("teapot"):
            return AMLResponse({"short": "stout"}, 418, json_str=True)
        if body.get("explode"):
            return AMLResponse("backend broke", 503)
        return {"echo": body, "len": len(request.get_data()), "text": request.get_data(as_text=True)}
    return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
'''


class RawHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(RAW, env={"AZUREML_LOG_LEVEL": "DEBUG"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_get_with_amlresponse_headers(self):
        r = self.srv.request("GET", "/score?a=5")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"got /score?a=5 a=5")
        self.assertEqual(r.headers["x-extra"], "yes")
        self.assertTrue(r.headers["content-type"].startswith("text/html"))

    def test_json_body_and_status(self):
        h = {"Content-Type": "application/json"}
        r = self.srv.request("POST", "/score", body=b'{"k": [1, 2]}', headers=h)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"echo": {"k": [1, 2]}, "len": 13, "text": '{"k": [1, 2]}'})
        r = self.srv.request("POST", "/score", body=b'{"teapot": true}', headers=h)
        self.assertEqual(r.status, 418)
        self.assertEqual(r.json(), {"short": "stout"})
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertNotIn("x-ms-run-function-failed", r.headers)
        r = self.srv.request("POST", "/score", body=b'{"explode": true}', headers=h)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.body, b"backend broke")
        self.assertEqual(r.headers["x-ms-run-function-failed"], "True")

    def test_binary_body_round_trip(self):
        data = bytes(range(256)) * 10
        r = self.srv.request("POST", "/score", body=data, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["content-type"], "application/octet-stream")

    def test_debug_log_has_one_line_per_request(self):
        self.srv.request("GET", "/score?a=1", headers={"x-request-id": "debug-line-1"})
        wait_for(lambda: "request-id=debug-line-1" in self.srv.logs()[0], 30, what="the request log line")
        line = [l for l in self.srv.logs()[0].splitlines() if "request-id=debug-line-1" in l]
        self.assertEqual(len(line), 1)
        self.assertIn("GET /score?a=1 -> 200", line[0])

    def test_generated_swagger(self):
        r = self.srv.request("GET", "/swagger.json")
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["swagger"], "2.0")
        self.assertIn("/score", doc["paths"])


SCHEMA_STUB = {
    "inference_schema/__init__.py": "",
    "inference_schema/schema_util.py": (
        "def is_schema_decorated(f):\n    return hasattr(f, '_in')\n"
        "def get_input_schema(f):\n    return getattr(f, '_in', {})\n"
        "def get_output_schema(f):\n    return getattr(f, '_out', {})\n"),
    "inference_schema/schema_decorators.py": (
        "import functools\n"
        "def input_schema(name, sample):\n"
        "    def deco(f):\n"
        "        @functools.wraps(f)\n"
        "        def w(*a, **k):\n"
        "            return f(*a, **k)\n"
        "        props = dict(getattr(f, '_in', {}).get('properties', {}))\n"
        "        props[name] = {'type': 'number', 'example': sample}\n"
        "        w._in = {'type': 'object', 'properties': props}\n"
        "        return w\n"
        "    return deco\n"),
}

SCHEMA = r"""
from inference_schema.schema_decorators import input_schema

def init():
    pass

@input_schema("b", 2)
@input_schema("a", 1)
def run(a, b, request_headers):
    return {"sum": a + b, "h": request_headers.get("X-H")}
"""


class InputSchemaTest(unittest.TestCase):
    """@input_schema scripts (with a stand-in for the inference-schema package in the app root)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(SCHEMA, files=SCHEMA_STUB)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_json_keys_become_parameters(self):
        r = self.srv.request("POST", "/score", body=b'{"a": 2, "b": 5}',
                             headers={"Content-Type": "application/json", "X-H": "v"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"sum": 7, "h": "v"})

    def test_bad_requests(self):
        r = self.srv.request("POST", "/score", body=b'{"a": 2, "b": 5}', headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        r = self.srv.request("POST", "/score", body=b"", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {"message": "POST body is empty. Expecting a JSON dictionary."})
        r = self.srv.request("POST", "/score", body=b"[1]", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.srv.request("POST", "/score", body=b"{nope", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.srv.request("POST", "/score", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 500)  # missing parameter: run() raises TypeError

    def test_swagger_uses_the_schema(self):
        doc = self.srv.request("GET", "/swagger.json").json()
        body_schema = doc["paths"]["/score"]["post"]["parameters"][0]["schema"]
        self.assertEqual(sorted(body_schema["properties"]), ["a", "b"])


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.keydir = tempfile.mkdtemp()
        cls.keys = os.path.join(cls.keydir, "keys.json")
        with open(cls.keys, "w") as f:
            json.dump({"primaryKey": "prim-123", "secondaryKey": "sec-456"}, f)
        cls.srv = Server("def init():\n    pass\ndef run(d):\n    return 'ok'\n",
                         env={"AMLC_AUTH_KEYS_FILE": cls.keys, "AML_CORS_ORIGINS": "http://a.example",
                              "AMLC_MAX_BODY_BYTES": "1000000"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        import shutil
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def test_keys(self):
        s = self.srv
        r = s.request("POST", "/score", body=b"1")
        self.assertEqual(r.status, 401)
        self.assertIn("message", r.json())
        self.assertEqual(s.request("POST", "/score", body=b"1", headers={"Authorization": "Bearer nope"}).status, 401)
        self.assertEqual(s.request("POST", "/score", body=b"1", headers={"Authorization": "prim-123"}).status, 401)
        for key in ("prim-123", "sec-456"):
            r = s.request("POST", "/score", body=b"1", headers={"Authorization": "Bearer " + key})
            self.assertEqual(r.status, 200, key)
            self.assertEqual(r.json(), "ok")
        self.assertEqual(s.request("GET", "/score", headers={"Authorization": "Bearer sec-456"}).status, 200)
        self.assertEqual(s.request("GET", "/").status, 200)  # health stays open
        self.assertEqual(s.request("GET", "/swagger.json").status, 401)

    def test_key_rotation_is_picked_up(self):
        with open(self.keys + ".tmp", "w") as f:
            json.dump({"primaryKey": "rotated-1", "secondaryKey": "sec-456"}, f)
        os.replace(self.keys + ".tmp", self.keys)
        wait_for(lambda: self.srv.request("POST", "/score", body=b"1",
                                          headers={"Authorization": "Bearer rotated-1"}).status == 200,
                 30, interval=0.1, what="the rotated key to be accepted")
        self.assertEqual(self.srv.request("POST", "/score", body=b"1",
                                          headers={"Authorization": "Bearer prim-123"}).status, 401)
        with open(self.keys + ".tmp", "w") as f:
            json.dump({"primaryKey": "prim-123", "secondaryKey": "sec-456"}, f)
        os.replace(self.keys + ".tmp", self.keys)
        wait_for(lambda: self.srv.request("POST", "/score", body=b"1",
                                          headers={"Authorization": "Bearer prim-123"}).status == 200,
                 30, interval=0.1, what="the original key to be accepted again")

    def test_key_rewritten_in_place_is_picked_up(self):
        # amlc rewrites the bind-mounted file in place (same inode); workers re-read it every 0.2 s.
        def rewrite(text):
            with open(self.keys, "r+") as f:
                f.write(text)
                f.truncate()
        auth = lambda k: {"Authorization": "Bearer " + k}
        status = lambda k: self.srv.request("POST", "/score", body=b"1", headers=auth(k)).status
        try:
            rewrite(json.dumps({"primaryKey": "inplace-1", "secondaryKey": "sec-456"}))
            wait_for(lambda: status("inplace-1") == 200, 30, interval=0.05, what="the rewritten key")
            self.assertEqual(status("prim-123"), 401)
            # A half-written file: the previous keys stay in force (and the error is logged once).
            rewrite('{"primaryKey": "inpl')
            seen = []  # requests trigger the reloads; each must still be served with the previous keys
            wait_for(lambda: seen.append(status("inplace-1")) or "cannot reload auth keys" in self.srv.logs()[1],
                     30, interval=0.05, what="the reload error")
            self.assertEqual(set(seen), {200})
            self.assertEqual(status("inplace-1"), 200)
            # Completed (blank-padded, as amlc writes a shorter file): used from the next reload on.
            rewrite(json.dumps({"primaryKey": "inplace-2", "secondaryKey": "sec-456"}) + "      \n")
            wait_for(lambda: status("inplace-2") == 200, 30, interval=0.05, what="the completed key")
            self.assertEqual(status("inplace-1"), 401)
            self.assertEqual(self.srv.logs()[1].count("cannot reload auth keys"), 1)
        finally:
            rewrite(json.dumps({"primaryKey": "prim-123", "secondaryKey": "sec-456"}))
            wait_for(lambda: status("prim-123") == 200, 30, interval=0.05, what="the original key")

    def test_cors(self):
        r = self.srv.request("OPTIONS", "/score", headers={"Origin": "http://a.example",
                                                           "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["access-control-allow-origin"], "http://a.example")
        r = self.srv.request("POST", "/score", body=b"1", headers={"Origin": "http://evil.example",
                                                                    "Authorization": "Bearer prim-123"})
        self.assertNotIn("access-control-allow-origin", r.headers)

    def test_unauthenticated_request_is_refused_from_its_headers(self):
        # 401 as soon as the head is in, without waiting for (or buffering) the declared 50 MB body; no
        # 100 Continue; the connection closes after the answer.
        for extra in (b"", b"Expect: 100-continue\r\n", b"Authorization: Bearer wrong\r\n"):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
            try:
                s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n" + extra + b"\r\n")
                r = read_response(s)
                self.assertIsNotNone(r, extra)
                status, headers, body, rest = r
                self.assertEqual(status, 401, extra)
                self.assertEqual(headers.get("connection"), "close")
                self.assertIn("message", json.loads(body))
                self.assertEqual(rest, b"")
                s.settimeout(30)
                self.assertEqual(s.recv(100), b"")  # closed (after the answer), no 100 Continue
            finally:
                s.close()
        # A well-behaved client streaming its body gets the 401 too, long before it could send it all.
        status, sent, _ = stream_request(self.srv.port, b"POST /score HTTP/1.1\r\nContent-Length: 300000000\r\n\r\n",
                                         300000000)
        self.assertEqual(status, 401)
        self.assertLess(sent, 300000000)
        # A small body that follows the refused head is read and dropped: the connection stays usable.
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        try:
            s.sendall(b"POST /score HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
            status, headers, _, rest = read_response(s)
            self.assertEqual((status, headers.get("connection"), rest), (401, None, b""))
            s.sendall(b"helloGET /score HTTP/1.1\r\nAuthorization: Bearer prim-123\r\n\r\n")
            self.assertEqual(read_response(s)[0], 200)
        finally:
            s.close()
        # A body already sent with the head is skipped: the connection stays usable.
        two = (b"POST /score HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /score HTTP/1.1\r\n"
               b"Authorization: Bearer prim-123\r\n\r\n")
        out = raw_exchange(self.srv.port, two, expect_responses=2)
        self.assertTrue(out.startswith(b"HTTP/1.1 401"), out)
        self.assertIn(b"HTTP/1.1 200 OK", out)

    def test_body_limit_is_checked_after_the_key(self):
        auth = b"Authorization: Bearer prim-123\r\n"
        out = raw_exchange(self.srv.port, b"POST /score HTTP/1.1\r\n" + auth + b"Content-Length: 1000001\r\n\r\n",
                           read_until_close=True, timeout=30)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)
        self.assertIn(b"1000000 bytes", out)
        status, sent, _ = stream_request(self.srv.port, b"POST /score HTTP/1.1\r\n" + auth +
                                         b"Transfer-Encoding: chunked\r\n\r\n100000\r\n", 40000000)
        self.assertEqual(status, 413)
        self.assertLess(sent, 40000000)
        r = self.srv.request("POST", "/score", body=b"y" * 1000000, headers={"Authorization": "Bearer prim-123"},
                             fresh=True)
        self.assertEqual(r.status, 200)

    def test_auth_off_by_default(self):
        with Server("def init():\n    pass\ndef run(d):\n    return 'open'\n") as s:
            self.assertEqual(s.request("POST", "/score", body=b"1").json(), "open")


class RequestTimeoutTest(unittest.TestCase):
    """A request that stops coming (head or body) gets 408 and a close after min(30 s, AMLC_KEEPALIVE_S)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("def init():\n    pass\ndef run(d):\n    return len(d)\n", env={"AMLC_KEEPALIVE_S": "1"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_stalled_head_and_body(self):
        for partial in (b"GET / HTTP/1.1\r\nHost: x\r\n", b"POST /score HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
            try:
                s.sendall(partial)
                r = read_response(s, timeout=30)
                self.assertIsNotNone(r, partial)
                self.assertEqual(r[0], 408, partial)
                self.assertEqual(r[1].get("connection"), "close")
                self.assertEqual(s.recv(100), b"")
            finally:
                s.close()

    def test_trickled_head_is_cut_off(self):
        # One byte at a time keeps the connection busy but the head must be complete in time.
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        try:
            s.sendall(b"GET / HTTP/1.1\r\n")
            got = b""
            deadline = time.monotonic() + 30
            while not got and time.monotonic() < deadline:
                try:
                    s.sendall(b"X-A: b\r\n")
                except OSError:
                    # The server answered and closed while a header was on its way: its reset can come
                    # before we read the 408 (still in our receive buffer): read it now.
                    s.settimeout(30)
                    try:
                        got = s.recv(4096)
                    except OSError:
                        pass
                    break
                s.settimeout(0.3)
                try:
                    got = s.recv(4096)
                except socket.timeout:
                    pass
            self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
        finally:
            s.close()


def _connections_of(pid, port):
    """TCP connections to port (not the listening socket) that process pid holds: its socket inodes matched against
    /proc/net/tcp, so the count does not depend on which other sockets (listener, supervisor channel, a readiness
    probe still closing) the process has."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                n += 1
    return n


def _accept_queue(port):
    """Connections waiting in the accept queue of the listening socket on port (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    return None


class ConnectionLimitTest(unittest.TestCase):
    """AMLC_MAX_CONNECTIONS caps the connections a worker holds (so its memory is bounded)."""

    def start(self):
        from _support import children
        srv = Server("def init():\n    pass\ndef run(d):\n    return len(d)\n", env={"AMLC_MAX_CONNECTIONS": "20"})
        worker = wait_for(lambda: children(srv.proc.pid), 60, what="the worker")[0]
        wait_for(lambda: _connections_of(worker, srv.port) == 0, 20, what="the readiness connection to close")
        return srv, worker

    def test_busy_connections_make_new_ones_wait(self):
        srv, worker = self.start()
        socks = []
        try:
            for _ in range(20):
                c = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                c.sendall(b"GET / HTTP/1.1\r\nX-Partial: ")  # a request in progress: not idle
                socks.append(c)
            wait_for(lambda: _connections_of(worker, srv.port) == 20, 20, what="20 connections in the worker")
            extra = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            socks.append(extra)
            extra.sendall(b"GET / HTTP/1.1\r\n\r\n")
            stable = []
            # the 21st waits in the accept queue (for as long as the others stay busy)
            wait_for(lambda: stable.append(_accept_queue(srv.port) == 1 and _connections_of(worker, srv.port) == 20)
                     or stable[-10:] == [True] * 10, 20, interval=0.05, what="the 21st connection to wait")
            socks[0].close()  # one goes: the waiting one is taken and served
            r = read_response(extra, timeout=30)
            self.assertIsNotNone(r)
            self.assertEqual(r[0], 200)
        finally:
            for c in socks:
                c.close()
            srv.stop()

    def test_idle_keep_alive_connections_make_room(self):
        srv, worker = self.start()
        conns = []
        try:
            for _ in range(20):
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                c.request("GET", "/")
                self.assertEqual(c.getresponse().read(), b"Healthy")
                conns.append(c)
            # A 21st client: the connection idle the longest is closed to make room for it.
            self.assertEqual(srv.request("GET", "/", fresh=True, timeout=30).status, 200)
            wait_for(lambda: conns[0].sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 8, 20,
                     what="the oldest idle connection to be closed (CLOSE_WAIT)")
            for c in conns[1:]:
                self.assertEqual(c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0], 1)
        finally:
            for c in conns:
                c.close()
            srv.stop()

    def test_bad_values(self):
        for value in ("0", "x"):
            env = python_env({"AML_APP_ROOT": "/nonexistent-amlc", "AZUREML_ENTRY_SCRIPT": "/dev/null",
                              "AMLC_HOST": "127.0.0.1", "AMLC_PORT": "0", "AMLC_MAX_CONNECTIONS": value})
            p = subprocess.run([sys.executable, "-m", "amlc_scoring.server"], env=env, capture_output=True,
                               timeout=60, text=True)
            self.assertEqual(p.returncode, 2, value)
            self.assertIn("AMLC_MAX_CONNECTIONS", p.stderr)


ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""
ROUTE6 = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 "
          "00000400 00000001 00000000 00000003 eth0\n"
          "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
          "ffffffff 00000001 00000000 00200200 lo\n"
          "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
          "00000100 00000001 00000000 00000001 eth0\n")


class AllowedPeersTest(unittest.TestCase):
    """AMLC_ALLOWED_PEERS: which peer addresses may connect."""

    def parse(self, value, route=ROUTE, route6=ROUTE6):
        import tempfile
        from amlc_scoring.app import parse_allowed_peers
        d = tempfile.mkdtemp(prefix="amlc-routes-")
        try:
            paths = []
            for name, text in (("route", route), ("ipv6_route", route6)):
                path = os.path.join(d, name)
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                paths.append(path)
            return parse_allowed_peers(value, *paths)
        finally:
            import shutil
            shutil.rmtree(d, ignore_errors=True)

    def test_unset_or_empty_allows_everyone(self):
        self.assertIsNone(self.parse(None))
        self.assertIsNone(self.parse(""))
        self.assertIsNone(self.parse("  "))

    def test_gateway(self):
        from amlc_scoring.app import default_gateways
        import tempfile
        with tempfile.NamedTemporaryFile("w") as r4, tempfile.NamedTemporaryFile("w") as r6:
            r4.write(ROUTE)
            r6.write(ROUTE6)
            r4.flush()
            r6.flush()
            self.assertEqual([str(a) for a in default_gateways(r4.name, r6.name)], ["172.17.0.1", "fe80::1"])
        peers = self.parse("gateway")
        for ok in ("127.0.0.1", "127.8.9.10", "::1", "172.17.0.1", "::ffff:172.17.0.1", "::ffff:127.0.0.1",
                   "fe80::1%eth0", "fe80::1"):
            self.assertTrue(peers.allows(ok), ok)
        for no in ("172.17.0.2", "172.17.0.3", "10.0.0.1", "::2", "fe80::2", "2001:db8::1", "", "nonsense"):
            self.assertFalse(peers.allows(no), no)
        self.assertEqual(peers.describe(), "127.0.0.0/8, ::1/128, 172.17.0.1/32, fe80::1/128")
        # no default route (docker --network none), or no route files: loopback only
        no_default = ROUTE.splitlines()[0] + "\n" + ROUTE.splitlines()[2] + "\n"
        for route, route6 in ((no_default, ""), (None, None)):
            peers = self.parse("gateway", route, route6)
            self.assertTrue(peers.allows("127.0.0.1"))
            self.assertFalse(peers.allows("172.17.0.1"))
            self.assertEqual(peers.describe(), "127.0.0.0/8, ::1/128")

    def test_list(self):
        peers = self.parse(" 10.0.0.0/8,192.168.1.5 , 2001:db8::/32,gateway")
        for ok in ("10.1.2.3", "192.168.1.5", "::ffff:192.168.1.5", "2001:db8::7", "172.17.0.1", "127.0.0.1"):
            self.assertTrue(peers.allows(ok), ok)
        for no in ("192.168.1.6", "11.0.0.1", "2001:db9::1", "172.17.0.3"):
            self.assertFalse(peers.allows(no), no)
        peers = self.parse("192.168.1.5")
        self.assertFalse(peers.allows("127.0.0.1"))
        self.assertEqual(peers.describe(), "192.168.1.5/32")

    def test_bad_values(self):
        from amlc_scoring.app import ConfigError
        for value in ("10.0.0.300", "foo", "10.0.0.0/33", "1.2.3.4,", ",", "1.2.3.4 5.6.7.8", "gateway;", "fe80::1%eth0"):
            with self.assertRaises(ConfigError, msg=value) as cm:
                self.parse(value)
            self.assertIn("AMLC_ALLOWED_PEERS", str(cm.exception))
        env = python_env({"AML_APP_ROOT": "/nonexistent-amlc", "AZUREML_ENTRY_SCRIPT": "nope.py",
                          "AMLC_HOST": "127.0.0.1", "AMLC_PORT": "0", "AMLC_ALLOWED_PEERS": "10.0.0.0/33"})
        p = subprocess.run([sys.executable, "-m", "amlc_scoring.server"], env=env, capture_output=True,
                           timeout=60, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("AMLC_ALLOWED_PEERS", p.stderr)

    def test_refused_peer_gets_nothing(self):
        s = Server("def init():\n    pass\ndef run(d):\n    return 'ok'\n", wait=False,
                   env={"AMLC_ALLOWED_PEERS": "10.1.2.3, ::2"})
        try:
            wait_for(lambda: "ready: " in s.logs()[0] or s.proc.poll() is not None, 20, what="the server")
            self.assertIsNone(s.proc.poll(), s.logs())
            for _ in range(3):
                try:
                    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
                except ConnectionResetError:
                    # The server's reset can arrive before connect() returns on a busy machine: refused all the same.
                    continue
                try:
                    c.sendall(b"GET / HTTP/1.1\r\n\r\n")
                except OSError:
                    pass
                try:
                    got = c.recv(100)
                except ConnectionResetError:
                    got = b""
                finally:
                    c.close()
                self.assertEqual(got, b"")
            wait_for(lambda: "refused a connection from 127.0.0.1" in s.logs()[1], 30, what="the log line")
            self.assertEqual(s.logs()[1].count("refused a connection from 127.0.0.1"), 1, s.logs()[1])
            self.assertIn("10.1.2.3/32, ::2/128", s.logs()[0])
        finally:
            s.stop()

    def test_allowed_peer_is_served(self):
        for value in ("127.0.0.1", "gateway", "10.0.0.0/8,127.0.0.0/8"):
            with Server("def init():\n    pass\ndef run(d):\n    return 'ok'\n", env={"AMLC_ALLOWED_PEERS": value}) as s:
                self.assertEqual(s.request("POST", "/score", body=b"x").json(), "ok")
                self.assertNotIn("refused", s.logs()[1])


class BodyLimitTest(unittest.TestCase):
    """AMLC_MAX_BODY_BYTES caps request bodies (Content-Length and chunked): 413 past it."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("def init():\n    pass\ndef run(d):\n    return len(d)\n", env={"AMLC_MAX_BODY_BYTES": "1000"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_content_length(self):
        self.assertEqual(self.srv.request("POST", "/score", body=b"a" * 1000).json(), 1000)
        out = raw_exchange(self.srv.port, b"POST /score HTTP/1.1\r\nContent-Length: 1001\r\n\r\n" + b"a" * 1001,
                           read_until_close=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)
        self.assertIn(b"Request body is larger than 1000 bytes", out)

    def test_chunked(self):
        def chunked(sizes):
            return (b"POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    b"".join(b"%x\r\n%s\r\n" % (n, b"c" * n) for n in sizes) + b"0\r\n\r\n")
        out = raw_exchange(self.srv.port, chunked([600, 400]))
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"1000"), out)
        out = raw_exchange(self.srv.port, chunked([600, 401]), read_until_close=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)

    def test_bad_values_are_config_errors(self):
        for value in ("abc", "0", "-5"):
            env = python_env({"AML_APP_ROOT": self.srv.root, "AZUREML_ENTRY_SCRIPT": "score.py",
                              "AMLC_HOST": "127.0.0.1", "AMLC_PORT": "0", "AMLC_MAX_BODY_BYTES": value})
            p = subprocess.run([sys.executable, "-m", "amlc_scoring.server"], env=env, capture_output=True,
                               timeout=60, text=True)
            self.assertEqual(p.returncode, 2, value)
            self.assertIn("AMLC_MAX_BODY_BYTES", p.stderr)


BIG = r'''
import os, time
def init():
    pass
def run(data):
    if data.startswith("sleep:"):  # until the test creates "release" (at most that many seconds)
        root = os.environ["AML_APP_ROOT"]
        open(os.path.join(root, "sleeping"), "w").close()
        deadline = time.monotonic() + float(data[6:])
        while time.monotonic() < deadline and not os.path.exists(os.path.join(root, "release")):
            time.sleep(0.01)
        return "slept"
    if data.startswith("big:"):
        return "x" * int(data[4:])
    return os.getpid()
'''


def _body_of(out):
    """(headers, body) of the one response in out; the body is checked against its Content-Length."""
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, out[:200]
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return headers, body


class LargeResponseTest(unittest.TestCase):
    """Responses of 64 KiB or more arrive whole, also when the connection closes after them."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(BIG, workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_closing_connections(self):
        for size in (65534, 70000, 3000000):
            body = b"big:%d" % size
            for req in (b"POST /score HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                        b"POST /score HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s"):
                out = raw_exchange(self.srv.port, req % (len(body), body), read_until_close=True, timeout=30)
                self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"), out[:200])
                headers, got = _body_of(out)
                self.assertEqual(headers["connection"], "close")
                self.assertEqual(int(headers["content-length"]), size + 2)
                self.assertEqual(len(got), size + 2, (size, req[:20]))
                self.assertEqual(got, b'"' + b"x" * size + b'"')

    def test_keep_alive(self):
        r = self.srv.request("POST", "/score", body=b"big:3000000", fresh=True, timeout=30)
        self.assertEqual(len(r.json()), 3000000)

    def test_slow_reader_gets_everything(self):
        # A client that reads slowly but keeps reading is not cut off, even when the whole response takes
        # longer than the idle timeout (here 2 s): only a stall without progress is.
        with Server(BIG, env={"AMLC_KEEPALIVE_S": "2"}) as srv:
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.settimeout(30)
            c.connect(("127.0.0.1", srv.port))
            try:
                c.sendall(b"POST /score HTTP/1.1\r\nContent-Length: 11\r\n\r\nbig:4000000")
                got = b""
                t0 = time.monotonic()
                while len(got) < 4000002 or b"\r\n\r\n" not in got:
                    chunk = c.recv(200000)
                    if not chunk:
                        break
                    got += chunk
                    time.sleep(0.1)  # the slow reader's pace, not a wait for the server
                self.assertGreater(time.monotonic() - t0, 2.0)
                headers, body = _body_of(got)
                self.assertEqual(len(body), 4000002)
            finally:
                c.close()

    def test_fair_share_closes(self):
        # While one worker sleeps in run(), every new connection goes to the other, which then holds more
        # than its fair share and answers some of them with Connection: close: those answers are whole.
        import threading
        wait_for(lambda: len({self.srv.request("POST", "/score", body=b"x", fresh=True).json()
                              for _ in range(8)}) == 2, 60, interval=0, what="both workers ready")
        marker = os.path.join(self.srv.root, "sleeping")
        release = os.path.join(self.srv.root, "release")
        for path in (marker, release):
            if os.path.exists(path):
                os.unlink(path)
        # The worker stays in run() until the requests below are done (a fixed 6 s could end first on a
        # loaded machine, and the other worker's share was no longer unfair).
        t = threading.Thread(target=lambda: self.srv.request("POST", "/score", body=b"sleep:50", fresh=True,
                                                             timeout=120))
        t.start()
        conns = []
        try:
            wait_for(lambda: os.path.exists(marker), 20, what="a worker busy in run()")
            closes = 0
            for _ in range(12):
                conns.append(http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30))
            for _ in range(2):
                for c in conns:
                    c.request("POST", "/score", body=b"big:200000")
                    r = c.getresponse()
                    data = r.read()  # IncompleteRead when the body was cut off
                    self.assertEqual(r.status, 200)
                    self.assertEqual(len(data), 200002)
                    closes += (r.getheader("Connection") or "").lower() == "close"
            self.assertGreater(closes, 0)
        finally:
            open(release, "w").close()
            for c in conns:
                c.close()
            t.join(120)


class AlarmRaceTest(unittest.TestCase):
    """The SIGALRM of the scoring timeout may fire at any point after run() returned, in the middle of
    the worker's cleanup: the worker must still end up idle (not marked busy in run(), which made the
    supervisor kill a healthy worker later and write an unsolicited 500 onto a keep-alive connection).
    In-process: the alarm is simulated at each line boundary in turn (sys.settrace), as Python runs a
    signal handler between bytecodes."""

    def test_alarm_at_every_point_of_the_cleanup(self):
        import tempfile
        import types
        from amlc_scoring import connection, slots, worker
        from amlc_scoring.app import Config
        from amlc_scoring.protocol import parse_head
        root = tempfile.mkdtemp(prefix="amlc-alarm-")
        with open(os.path.join(root, "score.py"), "w") as f:
            f.write("def run(d):\n    return d\n")
        cfg = Config({"AML_APP_ROOT": root, "AZUREML_ENTRY_SCRIPT": "score.py", "SCORING_TIMEOUT_MS": "600000"})
        state = {}

        def run(data):
            state["returned"] = True
            return "ok"
        script = types.SimpleNamespace(run=run, rawhttp=False, schema=False, takes_data=True, wants_headers=False,
                                       input_schema=None, output_schema=None)
        shared = slots.Slots(1)
        w = worker.Worker(cfg, script, None, shared, 0, None, None)
        req = parse_head(b"POST /score HTTP/1.1\r\nContent-Length: 1")

        def tracer(frame, event, arg):
            if event == "line" and state.get("returned") and not state.get("fired"):
                state["lines"] += 1
                if state["lines"] == state["at"]:
                    state["fired"] = True
                    w._on_alarm(signal.SIGALRM, None)  # raises ScoringTimeout while in run()
            return tracer
        old = signal.signal(signal.SIGALRM, w._on_alarm)
        try:
            for at in range(1, 400):
                a, b = socket.socketpair()
                try:
                    conn = connection.Conn(a, ("127.0.0.1", 1), 0, time.monotonic())
                    conn.t0 = time.monotonic()
                    conn.rid = "r%d" % at
                    state.clear()
                    state.update(lines=0, at=at)
                    sys.settrace(tracer)
                    try:
                        w._score(conn, req, [b"x"])
                    finally:
                        sys.settrace(None)
                    self.assertFalse(w.in_run, "alarm at line %d after run()" % at)
                    self.assertEqual(shared.busy_since(0), 0.0,
                                     "alarm at line %d after run(): still marked busy" % at)
                    b.settimeout(5)
                    status = read_response(b)[0]
                    self.assertIn(status, (200, 500), at)
                    if not state.get("fired"):
                        break  # past the last line: every point was tried
                finally:
                    a.close()
                    b.close()
            self.assertGreater(at, 10)
            self.assertFalse(state.get("fired"))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            import shutil
            shutil.rmtree(root, ignore_errors=True)


class ChunkLineTest(unittest.TestCase):
    """A chunk-size line (with its extensions) longer than MAX_CHUNK_LINE is refused however it arrives."""

    @staticmethod
    def decode(data, piece):
        from amlc_scoring.protocol import BadRequest, ChunkedBody
        dec = ChunkedBody(1 << 20, 65536)
        buf = b""
        try:
            for i in range(0, len(data), piece):
                buf += data[i:i + piece]
                buf = buf[dec.feed(buf):]
        except BadRequest as e:
            return e.status
        return dec.body if dec.done else None

    def test_decoder(self):
        from amlc_scoring.protocol import MAX_CHUNK_LINE
        for ext, expect in ((5000, 400), (MAX_CHUNK_LINE - 3, b"hello"), (MAX_CHUNK_LINE - 2, 400)):
            line = b"5;" + b"e" * ext + b"\r"  # the line, its CR included: 3 + ext bytes
            data = line + b"\nhello\r\n0\r\n\r\n"
            for piece in (len(data), 1, 7, 4096):
                self.assertEqual(self.decode(data, piece), expect, (ext, piece))

    def test_server(self):
        with Server("def init():\n    pass\ndef run(d):\n    return len(d)\n") as s:
            head = b"POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            data = head + b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"
            out = raw_exchange(s.port, data, read_until_close=True, timeout=20)
            self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:200])
            c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
            try:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sendall(head)
                for i in range(len(head), len(data)):
                    try:
                        c.send(data[i:i + 1])
                    except OSError:
                        break  # answered and closed
                r = read_response(c, timeout=20)
            finally:
                c.close()
            self.assertIsNotNone(r)
            self.assertEqual(r[0], 400)
            ok = head + b"5;" + b"e" * 100 + b"\r\nhello\r\n0\r\n\r\n"
            self.assertTrue(raw_exchange(s.port, ok, timeout=20).endswith(b"\r\n\r\n5"))


PID = r'''
import os, time
def init():
    with open(os.path.join(os.environ["AML_APP_ROOT"], "inits.log"), "a") as f:
        f.write("%d\n" % os.getpid())
def run(data):
    if data == "slow":
        time.sleep(0.3)
    return os.getpid()
'''


class WorkersTest(unittest.TestCase):
    def test_two_workers_serve_and_init_once_each(self):
        with Server(PID, workers=2) as s:
            pids = set()

            def both():
                pids.add(s.request("POST", "/score", body=b"x", fresh=True).json())
                return len(pids) == 2
            wait_for(both, 60, interval=0, what="two worker pids")
            with open(os.path.join(s.root, "inits.log")) as f:
                inits = f.read().split()
            self.assertEqual(sorted(inits), sorted(set(inits)))  # once per worker
            self.assertEqual(len(inits), 2)
            self.assertEqual({int(p) for p in inits}, pids)

    def test_keep_alive_connections_are_balanced_over_workers(self):
        with Server(PID, workers=2) as s:
            wait_for(lambda: len({s.request("GET", "/score", fresh=True).json() for _ in range(8)}) == 2, 60,
                     interval=0, what="both workers ready")
            conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=30) for _ in range(24)]
            try:
                def spread():
                    per_pid = {}
                    for c in conns:  # http.client reopens a connection the server closed
                        c.request("GET", "/score")
                        r = c.getresponse()
                        pid = json.loads(r.read())
                        if r.getheader("Connection", "").lower() != "close":
                            per_pid[pid] = per_pid.get(pid, 0) + 1
                    counts = sorted(per_pid.values())
                    return len(counts) == 2 and counts[1] - counts[0] <= 2 and sum(counts) == len(conns)
                wait_for(spread, 60, interval=0, what="an even spread of keep-alive connections")
            finally:
                for c in conns:
                    c.close()

    def test_fair_share_closes_settle_down(self):
        # New connections go to the idle workers in turn, so the keep-alive connections a client opens one
        # after the other end up spread and the fair-share close has little to do (when the first idle
        # worker took them all, every round closed about a third of them, for ever).
        with Server(PID, workers=2) as s:
            wait_for(lambda: len({s.request("GET", "/score", fresh=True).json() for _ in range(8)}) == 2, 60,
                     interval=0, what="both workers ready")
            conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=30) for _ in range(24)]
            try:
                closes = 0
                for _ in range(10):
                    for c in conns:
                        c.request("GET", "/score")
                        r = c.getresponse()
                        r.read()
                        closes += r.getheader("Connection", "").lower() == "close"
                self.assertLess(closes, 24)
            finally:
                for c in conns:
                    c.close()

    def test_stuck_worker_is_replaced(self):
        script = PID + r'''
import signal
def run(data):
    if data == "stuck":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])   # the timer cannot interrupt us
        time.sleep(30)
    return os.getpid()
'''
        with Server(script, env={"SCORING_TIMEOUT_MS": "2000", "AMLC_TIMEOUT_GRACE_MS": "1000"}) as s:
            pid = s.request("POST", "/score", body=b"x").json()
            # The supervisor answers for the worker it kills (not a reset), as the SIGALRM path would.
            r = s.request("POST", "/score", body=b"stuck", fresh=True, timeout=30,
                          headers={"x-request-id": "stuck-1", "x-ms-client-request-id": "client-9"})
            self.assertEqual(r.status, 500)
            self.assertEqual(r.json(), {"message": "Scoring timeout after 2000 ms"})
            self.assertEqual(r.headers["x-ms-run-function-failed"], "True")
            self.assertEqual(r.headers["x-request-id"], "stuck-1")
            self.assertEqual(r.headers["x-ms-client-request-id"], "client-9")
            self.assertEqual(r.headers["connection"], "close")
            s.wait_ready()
            new_pid = s.request("POST", "/score", body=b"x", fresh=True).json()
            self.assertNotEqual(pid, new_pid)
            self.assertIn("stuck in run()", s.logs()[1])
            with open(os.path.join(s.root, "inits.log")) as f:
                self.assertEqual(len(f.read().split()), 2)

    def test_crashed_worker_is_replaced(self):
        script = PID + r'''
def run(data):
    if data == "die":
        os._exit(7)
    return os.getpid()
'''
        with Server(script) as s:
            pid = s.request("POST", "/score", body=b"x").json()
            r = s.request("POST", "/score", body=b"die", fresh=True, timeout=30)  # answered by the supervisor
            self.assertEqual(r.status, 500)
            self.assertEqual(r.json(), {"message": "An unexpected error occurred in scoring script. "
                                                   "Check the logs for more info."})
            self.assertEqual(r.headers["x-ms-run-function-failed"], "True")
            s.wait_ready()
            self.assertNotEqual(s.request("POST", "/score", body=b"x", fresh=True).json(), pid)
            self.assertIn("exited (exit code 7); starting a new one", s.logs()[1])

    def test_sys_exit_and_keyboard_interrupt_in_run_are_500s(self):
        # run() raising SystemExit or KeyboardInterrupt is a failed request like any other: 500, and the
        # worker (with its other keep-alive connections) carries on.
        script = PID + r'''
import sys
def run(data):
    if data == "exit":
        sys.exit(3)
    if data == "interrupt":
        raise KeyboardInterrupt()
    return os.getpid()
'''
        with Server(script) as s:
            idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            try:
                idle.request("POST", "/score", body=b"x")
                pid = json.loads(idle.getresponse().read())
                for data in (b"exit", b"interrupt"):
                    r = s.request("POST", "/score", body=data, headers={"x-request-id": "base-%s" % data.decode()})
                    self.assertEqual(r.status, 500, data)
                    self.assertEqual(r.json(), {"message": "An unexpected error occurred in scoring script. "
                                                           "Check the logs for more info."})
                    self.assertEqual(r.headers["x-ms-run-function-failed"], "True")
                    self.assertEqual(r.headers["x-request-id"], "base-%s" % data.decode())
                    self.assertNotIn("connection", r.headers)  # the connection stays open
                    self.assertEqual(s.request("POST", "/score", body=b"x").json(), pid)
                idle.sock.settimeout(30)
                idle.request("POST", "/score", body=b"x")  # the idle connection was not dropped
                self.assertEqual(json.loads(idle.getresponse().read()), pid)
            finally:
                idle.close()
            err = s.logs()[1]
            self.assertIn("SystemExit: 3", err)
            self.assertIn("KeyboardInterrupt", err)
            self.assertNotIn("exited (", err)

    def test_worker_stuck_in_c_is_routed_around_and_its_request_answered(self):
        # run() deadlocks in C with the GIL held (ctypes.PyDLL): no Python signal handler can run, so
        # SIGALRM cannot interrupt it. The other worker serves every new connection meanwhile; the stuck
        # request gets the timeout answer (from the supervisor) when the worker is killed and replaced.
        script = PID + r'''
import ctypes
def run(data):
    if data == "stuck":
        open(os.path.join(os.environ["AML_APP_ROOT"], "stuck.started"), "w").close()
        libc = ctypes.PyDLL(None)
        m = ctypes.create_string_buffer(64)
        libc.pthread_mutex_init(m, None)
        libc.pthread_mutex_lock(m)
        libc.pthread_mutex_lock(m)
    return os.getpid()
'''
        with Server(script, workers=2, env={"SCORING_TIMEOUT_MS": "15000", "AMLC_TIMEOUT_GRACE_MS": "1000"}) as s:
            pids = set()
            wait_for(lambda: pids.add(s.request("POST", "/score", body=b"x", fresh=True).json()) or len(pids) == 2,
                     60, interval=0, what="both workers")
            import threading
            stuck = {}

            def send_stuck():
                try:
                    stuck["r"] = s.request("POST", "/score", body=b"stuck", fresh=True, timeout=60)
                except BaseException as e:  # reported by the assertions below
                    stuck["e"] = e
            t = threading.Thread(target=send_stuck)
            t.start()
            try:
                wait_for(lambda: os.path.exists(os.path.join(s.root, "stuck.started")), 60, what="run() to be stuck")
                served = []
                for _ in range(12):
                    served.append(s.request("POST", "/score", body=b"x", fresh=True, timeout=60).json())
                self.assertTrue(t.is_alive(), "the 12 requests were not served while the worker was stuck")
                self.assertEqual(len(set(served)), 1)  # all by the other worker
                self.assertEqual(len(pids | set(served)), 2)
            finally:
                t.join(60)
            self.assertNotIn("e", stuck)
            r = stuck["r"]
            self.assertEqual(r.status, 500, r)
            self.assertEqual(r.json(), {"message": "Scoring timeout after 15000 ms"})
            self.assertEqual(r.headers["x-ms-run-function-failed"], "True")
            self.assertIn("stuck in run()", s.logs()[1])
            wait_for(lambda: len(open(os.path.join(s.root, "inits.log")).read().split()) == 3, 20,
                     what="the replacement worker's init()")
            fresh = set()
            wait_for(lambda: fresh.add(s.request("POST", "/score", body=b"x", fresh=True).json()) or len(fresh) == 2,
                     20, interval=0, what="two workers again")
            self.assertEqual(len(fresh & pids), 1)

    def test_sighup_while_a_worker_starts(self):
        # SIGHUP while a worker is still in init(): the supervisor stopped it itself, so it starts a new
        # one (it used to take it for a worker failing to start and stop the whole server, exit 3).
        script = r'''
import os, time
ROOT = os.environ["AML_APP_ROOT"]
def init():
    open(os.path.join(ROOT, "init.%d" % os.getpid()), "w").close()
    while not os.path.exists(os.path.join(ROOT, "go")):
        time.sleep(0.01)
def run(data):
    return os.getpid()
'''
        s = Server(script, wait=False)
        try:
            inits = lambda: [f for f in os.listdir(s.root) if f.startswith("init.")]
            wait_for(lambda: len(inits()) == 1, 20, what="the first init()")
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: len(inits()) == 2 or s.proc.poll() is not None, 20, what="a second init()")
            self.assertIsNone(s.proc.poll(), s.logs()[1])
            open(os.path.join(s.root, "go"), "w").close()
            s.wait_ready(30)
            served = s.request("POST", "/score", body=b"x").json()
            self.assertIn("init.%d" % served, inits())
            self.assertEqual(len(inits()), 2)
            self.assertNotIn("failed to start", s.logs()[1])
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(s.proc.wait(20), 0)
        finally:
            s.stop()

    def test_sighup_lets_requests_in_progress_finish(self):
        # The old worker finishes the request it is running (answered, with Connection: close), then
        # exits; the new one serves what comes next.
        script = PID + r'''
import signal
def run(data):
    if data.startswith("slow"):
        # Stays in run() until the worker has been told to drain (its SIGTERM handler has run), so the
        # request is in progress when that happens however slowly the supervisor gets to it.
        root = os.environ["AML_APP_ROOT"]
        told = os.path.join(root, "told")
        previous = signal.getsignal(signal.SIGTERM)
        def on_term(signum, frame):
            previous(signum, frame)
            open(told, "w").close()
        signal.signal(signal.SIGTERM, on_term)
        open(os.path.join(root, data), "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(told) and time.monotonic() < deadline:
            time.sleep(0.01)
    return os.getpid()
'''
        import threading
        with Server(script, env={"SCORING_TIMEOUT_MS": "90000"}) as s:
            old = s.request("POST", "/score", body=b"x", fresh=True).json()
            got = {}

            def slow():
                try:
                    got["r"] = s.request("POST", "/score", body=b"slow1", fresh=True, timeout=60)
                except BaseException as e:  # reported below
                    got["e"] = e
            t = threading.Thread(target=slow)
            t.start()
            try:
                wait_for(lambda: os.path.exists(os.path.join(s.root, "slow1")), 20, what="run() to start")
                s.proc.send_signal(signal.SIGHUP)
            finally:
                t.join(60)
            self.assertNotIn("e", got)
            r = got["r"]
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), old)
            self.assertEqual(r.headers.get("connection"), "close")
            new = wait_for(lambda: (lambda p: p != old and p)(s.request("POST", "/score", body=b"x", fresh=True,
                                                                         timeout=30).json()),
                           30, interval=0.05, what="the new worker")
            self.assertNotEqual(new, old)
            wait_for(lambda: not _alive(old), 20, what="the old worker to exit")
            with open(os.path.join(s.root, "inits.log")) as f:
                self.assertEqual(len(f.read().split()), 2)
            _, err = s.logs()
            self.assertNotIn("failed to start", err)
            self.assertNotIn("Traceback", err)

    def test_sigterm_stops_server_and_workers(self):
        s = Server(PID, workers=2)
        try:
            pid = s.request("POST", "/score", body=b"x").json()
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(s.proc.wait(60), 0)
            wait_for(lambda: not _alive(pid), 30, what="the worker to exit")
        finally:
            s.stop()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class ScriptLocationTest(unittest.TestCase):
    def test_entry_script_in_subfolder_imports_siblings(self):
        files = {"src/util.py": "VALUE = 'from-util'\n",
                 "src/entry.py": "import util\ndef init():\n    pass\ndef run(d):\n    return util.VALUE\n"}
        with Server("raise SystemExit('not this one')\n", files=files,
                    env={"AZUREML_ENTRY_SCRIPT": "src/entry.py"}) as s:
            self.assertEqual(s.request("POST", "/score", body=b"").json(), "from-util")

    def test_main_py_without_entry_script_variable(self):
        files = {"main.py": "def init():\n    pass\ndef run(d):\n    return 'main'\n"}
        with Server("raise SystemExit('not this one')\n", files=files, env={"AZUREML_ENTRY_SCRIPT": ""}) as s:
            self.assertEqual(s.request("GET", "/score").json(), "main")


class StartupFailureTest(unittest.TestCase):
    def test_init_failure_exits_non_zero_with_traceback(self):
        s = Server("def init():\n    raise ValueError('cannot load model xyz')\ndef run(d):\n    return 1\n",
                   wait=False)
        try:
            code = s.proc.wait(60)
            self.assertNotEqual(code, 0)
            out, err = s.logs()
            self.assertIn("Traceback", err)
            self.assertIn("ValueError: cannot load model xyz", err)
            self.assertIn("init()", err)
        finally:
            s.stop()

    def test_missing_entry_script_and_bad_config(self):
        env = python_env({"AML_APP_ROOT": "/nonexistent-amlc", "AZUREML_ENTRY_SCRIPT": "nope.py",
                          "AMLC_HOST": "127.0.0.1", "AMLC_PORT": "0"})
        p = subprocess.run([sys.executable, "-m", "amlc_scoring.server"], env=env, capture_output=True,
                           timeout=60, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("entry script not found", p.stderr)
        env["WORKER_COUNT"] = "zero"
        p = subprocess.run([sys.executable, "-m", "amlc_scoring.server"], env=env, capture_output=True,
                           timeout=60, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("WORKER_COUNT", p.stderr)

    def test_syntax_error_in_script(self):
        s = Server("def init(:\n", wait=False)
        try:
            self.assertNotEqual(s.proc.wait(60), 0)
            self.assertIn("SyntaxError", s.logs()[1])
        finally:
            s.stop()


if __name__ == "__main__":
    unittest.main()
