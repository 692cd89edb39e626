"""A short, deterministic run of the scoring server's HTTP fuzzer (fuzz/python/fuzz_http.py): the seed
corpus with its expected statuses, then mutated, generated, pipelined and concurrent requests."""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree

import contextlib
import io
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "fuzz", "python")))

import fuzz_http  # noqa: E402


class HttpFuzzTest(unittest.TestCase):
    def test_short_fuzz_run_finds_nothing(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = fuzz_http.main(["--seed", "1", "--cases", "400", "--seconds", "300"])
        self.assertEqual(code, 0, out.getvalue())
        self.assertIn("400 case(s)", out.getvalue())

    def test_the_corpus_says_what_it_expects(self):
        seeds = fuzz_http.load_corpus(fuzz_http.CORPUS)
        self.assertGreaterEqual(len(seeds), 30)
        for name, data, expect in seeds:
            self.assertTrue(expect, name)  # every seed's name starts with its expected status(es)
        self.assertIn(400, {e[0] for _, _, e in seeds})
        self.assertIn(b"GET  HTTP/1.1", b"".join(d for _, d, _ in seeds))  # the empty request target


if __name__ == "__main__":
    unittest.main()
