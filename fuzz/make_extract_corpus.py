#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_extract (fuzz/corpus/extract/): one ordinary snapshot and the hostile shapes
extraction must refuse, as uncompressed tar streams (*.tar; the target gzips its input, so that mutations reach
the tar headers) trimmed of their trailing padding, plus two .tar.gz files (used as they are). Deterministic
(mtime 0, gzip without name or time); rerun after a change:
    python3 fuzz/make_extract_corpus.py fuzz/corpus/extract
"""
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, size=None):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.linkname = link
    info.size = len(data) if size is None else size
    return info, data


def trimmed(raw):
    """The tar stream up to its last non-zero block, then the two zero blocks that end an archive."""
    end = len(raw.rstrip(b"\0"))
    end = (end + 511) // 512 * 512
    return raw[:end] + b"\0" * 1024


def write_gz(path, raw):
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(raw)


def write(path, entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)
    with open(path, "wb") as f:
        f.write(trimmed(buf.getvalue()))


def main(out):
    os.makedirs(out, exist_ok=True)
    d = lambda n: os.path.join(out, n + ".tar")
    write(d("ok-snapshot"), [
        entry("pkg", tarfile.DIRTYPE, mode=0o755), entry("pkg/__init__.py"), entry("pkg/util.py", data=b"u" * 300),
        entry("train.py", data=b"print('hi')\n", mode=0o755), entry("link.py", tarfile.SYMTYPE, link="pkg/util.py"),
        entry("deep/a/b/c.txt", data=b"c"), entry("up/l", tarfile.SYMTYPE, link="../pkg/util.py"),
        entry("hard", tarfile.LNKTYPE, link="train.py"), entry("n" * 150 + ".txt", data=b"long name")])
    write(d("dotdot"), [entry("../evil.txt", data=b"x")])
    write(d("dotdot-middle"), [entry("a/../../evil.txt", data=b"x")])
    write(d("absolute"), [entry("/tmp/amlc-fuzz-evil.txt", data=b"x")])
    write(d("symlink-out"), [entry("l", tarfile.SYMTYPE, link="../../etc")])
    write(d("symlink-abs"), [entry("l", tarfile.SYMTYPE, link="/etc/passwd")])
    write(d("symlink-chain"), [entry("b", tarfile.SYMTYPE, link="."), entry("a", tarfile.SYMTYPE, link="b/..")])
    write(d("symlink-then-write"), [entry("sub", tarfile.DIRTYPE, mode=0o755), entry("d", tarfile.SYMTYPE, link="sub"),
                                    entry("d/x.txt", data=b"x")])
    write(d("symlink-replace-dir"), [entry("d", tarfile.DIRTYPE, mode=0o755), entry("d", tarfile.SYMTYPE, link=".."),
                                     entry("d/x.txt", data=b"x")])
    write(d("hardlink-out"), [entry("h", tarfile.LNKTYPE, link="../outside.txt")])
    write(d("hardlink-to-symlink"), [entry("x/y/s", tarfile.SYMTYPE, link="../../f"), entry("f", data=b"f"),
                                     entry("h", tarfile.LNKTYPE, link="x/y/s")])
    write(d("hardlink-then-write"), [entry("f", data=b"f"), entry("h", tarfile.LNKTYPE, link="f"),
                                     entry("h", data=b"overwrite")])
    write(d("device"), [entry("dev", tarfile.CHRTYPE), entry("blk", tarfile.BLKTYPE)])
    write(d("fifo"), [entry("pipe", tarfile.FIFOTYPE)])
    write(d("setuid"), [entry("s", data=b"#!/bin/sh\n", mode=0o4755), entry("dir", tarfile.DIRTYPE, mode=0o1777)])
    write(d("no-perms"), [entry("locked", tarfile.DIRTYPE, mode=0), entry("locked/f", data=b"x", mode=0)])
    write(d("duplicate"), [entry("f", data=b"one"), entry("f", data=b"two")])
    write(d("gnu-longname"), [entry("L" * 300, data=b"x")], fmt=tarfile.GNU_FORMAT)
    write(d("ustar-dir-size"), [entry("d", tarfile.DIRTYPE, mode=0o755, size=0)], fmt=tarfile.USTAR_FORMAT)
    write(d("truncated"), [entry("big", data=b"z" * 4096)])
    with open(d("truncated"), "rb") as f:
        raw = f.read()
    os.remove(d("truncated"))
    write_gz(os.path.join(out, "truncated.tar.gz"), raw[:1024])
    with open(d("ok-snapshot"), "rb") as f:
        write_gz(os.path.join(out, "ok-snapshot.tar.gz"), f.read())
    write(d("zeros"), [entry("z", data=b"\0" * 2000)])
    # Sparse files (GNU tar's PAX and old-GNU encodings): 64 MB of holes around one byte.
    if shutil.which("tar"):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "hole"), "wb") as f:
                f.truncate(64 << 20)
                f.seek(32 << 20)
                f.write(b"x")
            for fmt in ("posix", "oldgnu"):
                extra = ["--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"] if fmt == "posix" else []
                raw = subprocess.run(["tar", "--sparse", "--format=" + fmt, "--mtime=@0", "--owner=0", "--group=0",
                                      "--numeric-owner", *extra, "-C", tmp, "-cf", "-", "hole"],
                                     check=True, capture_output=True).stdout
                with open(d("sparse-" + fmt), "wb") as f:
                    f.write(trimmed(raw))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "extract"))
