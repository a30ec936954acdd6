#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench.py's SECTIONS table is the one list of its sections: every section
is rendered by its own renderer from the stored results (together they
exercise all of them), and the whole report of each stored result renders.
Usage: check_bench_report.py REPO"""
import contextlib, glob, io, json, os, sys, tempfile

repo = sys.argv[1]
sys.path.insert(0, os.path.join(repo, "contrib", "bench"))
import bench  # noqa: E402

rendered = set()
results = sorted(glob.glob(os.path.join(repo, "contrib", "bench", "results", "*.json")))
assert results, "no stored results"
for path in results:
    with open(path) as f:
        res = json.load(f)
    for sec in bench.SECTIONS:
        if any(res.get(k) for k in sec.keys):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                sec.render(res)
            assert out.getvalue().strip(), "%s: section %s rendered nothing" % (path, sec.name)
            rendered.add(sec.name)
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
        bench.report(res, d)
missing = sorted({s.name for s in bench.SECTIONS} - rendered)
assert not missing, "no stored result exercises section(s): %s" % ", ".join(missing)
assert len({s.name for s in bench.SECTIONS}) == len(bench.SECTIONS), "a section name is used twice"
print("bench report: %d sections rendered from %d stored results" % (len(rendered), len(results)))
