"""The routes of the scoring server, decided from the request head alone: GET|HEAD / (health), OPTIONS
(CORS preflight), GET /swagger.json (the app root's swagger2.json/swagger3.json, else a generated
document), the key check (401) and 404/405. An authorised GET|POST /score is left to the worker, which
reads its body and calls run() (scoring.py)."""

import json
import os
from urllib.parse import parse_qsl

from amlc_scoring.responses import HTML, JSON, clean, message


class Routes:
    """Answers what does not run the script. An answer is (status, body, content type, extra headers)."""

    def __init__(self, cfg, keys, script):
        self.cfg = cfg
        self.keys = keys
        self.script = script
        self.swagger_cache = {}

    def answer(self, req, now):
        """The answer to a request that does not run the script, from its head alone; None for an
        authorised /score request (its body is read first). `now` is when its head was in (keys reload)."""
        method = req.method
        path = req.path
        if path == "/score":
            if method == "POST" or method == "GET":
                return self._unauthorized(req, now)  # None when authorised: run() answers
            if method == "OPTIONS":
                return self._options(req)
            return _not_allowed(method, path, "GET, POST, OPTIONS")
        if path == "/":
            if method == "GET" or method == "HEAD":
                return 200, b"Healthy", HTML, None
            if method == "OPTIONS":
                return self._options(req)
            return _not_allowed(method, path, "GET, HEAD, OPTIONS")
        if path == "/swagger.json":
            if method == "GET" or method == "HEAD":
                refused = self._unauthorized(req, now)
                if refused is not None:
                    return refused
                status, doc = self._swagger(req.query)
                return status, doc, JSON, None
            return _not_allowed(method, path, "GET, HEAD")
        if path == "*" and method == "OPTIONS":
            return self._options(req)
        return 404, message("Not found: %s" % path), JSON, None

    def _unauthorized(self, req, now):
        """The 401 answer when keys are on and the request has none of them; else None."""
        if self.keys is None or self.keys.check(req.hdrs.get("authorization"), now):
            return None
        return (401, message("Unauthorized: send a service key as 'Authorization: Bearer <key>'"), JSON,
                [("WWW-Authenticate", "Bearer")])

    def _options(self, req):
        extra = [("Allow", "GET, POST, OPTIONS")]
        if self.cfg.cors_origins:
            extra.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
            req_h = req.hdrs.get("access-control-request-headers")
            extra.append(("Access-Control-Allow-Headers", clean(req_h) if req_h else
                          "Authorization, Content-Type, x-request-id, x-ms-client-request-id"))
            extra.append(("Access-Control-Max-Age", "600"))
        return 200, b"", HTML, extra


    def _swagger(self, query):
        version = "2"
        if query:
            for k, v in parse_qsl(query, keep_blank_values=True):
                if k == "version":
                    version = v.strip()
        if version not in ("2", "3"):
            return 404, message("Swagger version %s is not supported (use 2 or 3)" % version)
        path = os.path.join(self.cfg.app_root, "swagger%s.json" % version)
        try:
            st = os.stat(path)
        except OSError:
            return 200, self._generated_swagger(version)
        cached = self.swagger_cache.get(version)
        if cached and cached[0] == st.st_mtime_ns:
            return 200, cached[1]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return 500, message("Cannot read %s: %s" % (os.path.basename(path), e))
        self.swagger_cache[version] = (st.st_mtime_ns, data)
        return 200, data

    def _generated_swagger(self, version):
        title = os.environ.get("SERVICE_NAME") or "ML service"
        ver = os.environ.get("SERVICE_VERSION") or "1.0"
        sec = [{"Bearer": []}] if self.keys is not None else []
        in_schema = self.script.input_schema or {}
        out_schema = self.script.output_schema or {}
        responses = {"200": {"description": "Success", "schema": out_schema},
                     "default": {"description": "Failure", "schema": {"$ref": "#/definitions/ErrorResponse"}}}
        err_def = {"type": "object", "properties": {"message": {"type": "string"}}}
        if version == "2":
            doc = {
                "swagger": "2.0",
                "info": {"title": title, "description": "API specification for the Azure Machine Learning service %s"
                         % title, "version": ver},
                "schemes": ["http"],
                "consumes": ["application/json"],
                "produces": ["application/json"],
                "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header",
                                                   "description": "For example: Bearer abc123"}},
                "paths": {
                    "/": {"get": {"operationId": "ServiceHealthCheck", "description": "Simple health check endpoint "
                                  "to ensure the service is up at any given point.",
                                  "responses": {"200": {"description": "If service is up and running, this response "
                                                        "will be returned with the content 'Healthy'",
                                                        "schema": {"type": "string"}},
                                                "default": responses["default"]}}},
                    "/score": {"post": {"operationId": "RunMLService", "description": "Run web service's model "
                                        "and get the prediction output", "security": sec,
                                        "parameters": [{"name": "serviceInputPayload", "in": "body",
                                                        "description": "The input payload for executing the "
                                                        "real-time machine learning service.", "schema": in_schema}],
                                        "responses": responses}},
                },
                "definitions": {"ErrorResponse": err_def},
            }
        else:
            doc = {
                "openapi": "3.0.1",
                "info": {"title": title, "version": ver},
                "paths": {
                    "/": {"get": {"operationId": "ServiceHealthCheck",
                                  "responses": {"200": {"description": "Healthy",
                                                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
                    "/score": {"post": {"operationId": "RunMLService", "security": sec,
                                        "requestBody": {"content": {"application/json": {"schema": in_schema}}},
                                        "responses": {"200": {"description": "Success",
                                                              "content": {"application/json": {"schema": out_schema}}},
                                                      "default": {"description": "Failure", "content": {
                                                          "application/json": {"schema": {
                                                              "$ref": "#/components/schemas/ErrorResponse"}}}}}}},
                },
                "components": {"schemas": {"ErrorResponse": err_def},
                               "securitySchemes": {"Bearer": {"type": "apiKey", "name": "Authorization",
                                                              "in": "header"}}},
            }
        return json.dumps(doc, indent=2).encode("utf-8")


def _not_allowed(method, path, allow):
    return 405, message("Method %s is not allowed on %s" % (method, path)), JSON, [("Allow", allow)]
