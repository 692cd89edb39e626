"""amlc scoring server (stdlib only): `python3 -m amlc_scoring.server`.

A drop-in for the Azure ML inference server's HTTP contract (GET /, GET|POST /score, /swagger.json),
with pre-forked single-threaded worker processes running an epoll event loop each.
See README.md beside this package for the environment-variable contract.
"""
