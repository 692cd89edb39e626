"""A short, deterministic run of the scoring server's HTTP fuzzer (fuzz/python/fuzz_http.py): the seed
corpus with its expected statuses, then mutated, generated, pipelined and concurrent requests, big responses,
clients that stop reading for a while or for good, run() failing with sys.exit()."""

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

    def test_failures_replay_the_way_they_were_sent(self):
        # A failure is written with how it was sent, and --replay sends it that way again: a concurrent
        # case as its connections at once (it used to be replayed as one connection's requests in a row),
        # a slow reader with its pause, an abandoning client without reading.
        import tempfile
        fz = fuzz_http.Fuzzer(type("Args", (), {"seed": 3, "corpus": fuzz_http.CORPUS})())  # no server needed
        try:
            reqs = fz.concurrent_reqs()
            slow = fz.slow_reader_case()
            big = fz.big_response_reqs()[0]
        finally:
            fz.stop()
        fails = [("concurrent", b"".join(r[0] for r in reqs), "msg",
                  {"case": "concurrent", "pieces": [1], "expect": None,
                   "connections": [{"pieces": [len(p) for p in r[1]], "expect": r[2]} for r in reqs]}),
                 (slow[0], slow[1], "msg", {"case": slow[0], "pieces": [len(p) for p in slow[2]], "expect": slow[3],
                                            "read_delay": slow[4]}),
                 ("abandon", big, "msg", {"case": "abandon", "pieces": [len(big)], "expect": None, "abandon": True})]
        out = tempfile.mkdtemp(prefix="amlc-fuzz-test-")
        paths = fuzz_http.write_failures(out, fails)
        seen = []
        replayer = fuzz_http.Fuzzer(type("Args", (), {"seed": 1, "corpus": fuzz_http.CORPUS})())
        replayer.concurrent_case = lambda r: seen.append(("concurrent", r))
        replayer.run_case = lambda name, data, pieces=None, expect=None, keep_open=False, read_delay=0.0: \
            seen.append(("case", data, pieces, expect, read_delay))
        replayer.abandon = lambda name, data: seen.append(("abandon", data))
        replayer.check_abandoned = lambda everything=False: None
        try:
            for p in paths:
                replayer.replay(p)
        finally:
            replayer.stop()
            import shutil
            shutil.rmtree(out, ignore_errors=True)
        self.assertEqual(seen[0], ("concurrent", [(r[0], r[1], r[2]) for r in reqs]))
        self.assertGreaterEqual(len(reqs), 2)
        self.assertEqual(seen[1], ("case", slow[1], slow[2], slow[3], slow[4]))
        self.assertGreater(slow[4], 0)
        self.assertEqual(seen[2], ("abandon", big))
        self.assertTrue(big.startswith(b"POST /score") and b"big:" in big)


if __name__ == "__main__":
    unittest.main()
