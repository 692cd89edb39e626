"""AMLRequest / rawhttp / AMLResponse shims (azureml.contrib.services and azureml_inference_server_http)."""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the asset tree

import json
import unittest

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse
from azureml_inference_server_http.api.aml_request import AMLRequest as NewRequest
from azureml_inference_server_http.api.aml_response import AMLResponse as NewResponse


class AMLRequestTest(unittest.TestCase):
    def test_fields(self):
        r = AMLRequest("POST", "/score", "a=1&a=2&b=x", {"content-type": "application/json", "X-Thing": "t"},
                       b'{"k": 1}')
        self.assertEqual(r.method, "POST")
        self.assertEqual(r.path, "/score")
        self.assertEqual(r.full_path, "/score?a=1&a=2&b=x")
        self.assertEqual(r.args["a"], "1")
        self.assertEqual(r.args.getlist("a"), ["1", "2"])
        self.assertEqual(r.args.get("missing", "d"), "d")
        self.assertEqual(r.args.get("a", type=int), 1)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertEqual(r.headers.get("x-thing"), "t")
        self.assertIn("X-THING", r.headers)
        self.assertEqual(r.get_data(), b'{"k": 1}')
        self.assertEqual(r.get_data(as_text=True), '{"k": 1}')
        self.assertEqual(r.data, b'{"k": 1}')
        self.assertEqual(r.json, {"k": 1})
        self.assertEqual(r.get_json(), {"k": 1})
        self.assertEqual(AMLRequest("GET", "/score").full_path, "/score?")

    def test_json_needs_content_type_unless_forced(self):
        r = AMLRequest("POST", "/score", "", {"Content-Type": "text/plain"}, b"[1]")
        self.assertIsNone(r.json)
        self.assertEqual(r.get_json(force=True), [1])
        with self.assertRaises(ValueError):
            r.get_json()
        bad = AMLRequest("POST", "/score", "", {"Content-Type": "application/json"}, b"{x")
        self.assertIsNone(bad.get_json(silent=True))
        with self.assertRaises(ValueError):
            bad.get_json()

    def test_rawhttp_marks_the_function(self):
        @rawhttp
        def run(request):
            return request.method
        self.assertTrue(run._aml_rawhttp)
        self.assertEqual(run(AMLRequest("GET", "/score")), "GET")

    def test_new_import_path(self):
        self.assertIs(NewRequest, AMLRequest)
        self.assertIs(NewResponse, AMLResponse)


class AMLResponseTest(unittest.TestCase):
    def test_text_and_headers(self):
        r = AMLResponse("hello", 201, {"X-A": "1"})
        self.assertEqual(r.status_code, 201)
        self.assertEqual(r.get_data(), b"hello")
        self.assertEqual(r.headers["X-A"], "1")
        self.assertEqual(r.mimetype, "text/html")

    def test_json_str_and_content_type_override(self):
        r = AMLResponse({"a": [1]}, 200, json_str=True)
        self.assertEqual(json.loads(r.get_data()), {"a": [1]})
        self.assertEqual(r.mimetype, "application/json")
        r = AMLResponse(b"\x00\x01", 200, {"content-type": "application/octet-stream"})
        self.assertEqual(r.mimetype, "application/octet-stream")
        self.assertEqual(len([k for k in r.headers if k.lower() == "content-type"]), 1)
        r = AMLResponse("x", 200, response_headers={"X-B": "2"})
        self.assertEqual(r.headers["X-B"], "2")


if __name__ == "__main__":
    unittest.main()
