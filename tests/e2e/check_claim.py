#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks one e2e result: the independent ruler's reading against the bound,
and the daemon's own claim (its log or CLI line) against the ruler.

    check_claim.py GUEST BOUND_US SLACK_US RULER_JSON DAEMON_LINE [INTENDED_US]

INTENDED_US: the offset the guest should run at (a clock offset='variable'
guest); the ruler's reading is taken relative to it, as the daemon reports.

Prints one line of numbers; exits 1 (with the reason) when
- the ruler reads the guest beyond BOUND_US after "synced" (it claims its
  target), or beyond the tolerance after "in-sync" (it claims only that) or
  "approximate" (it stopped short of its target and said why: on a host
  whose sets scatter more than the target that is the truth; the accuracy
  figures belong to the benchmark and to the repeated cases' bias bound,
  not to one reading), or
- it says "approximate" without one of the engine's reasons, or
- the daemon's line claims no verified result (not synced/approximate/in-sync,
  or no verified offset: a daemon that does not verify cannot say one), or
- the daemon's verified offset and the ruler's differ by more than the
  daemon's own uncertainty plus SLACK_US (the ruler's repeatability and drift:
  a daemon that reports what it did not reach), or
- it says "synced" with an uncertainty wider than the tolerance.
"""
import json
import re
import sys

UNIT = {"us": 1.0, "ms": 1e3, "s": 1e6}
# The lab daemons run with the default tolerance.
TOLERANCE_US = 1000.0
NUM = r"([+-][0-9.]+) (us|ms|s)"
# Why an engine stops "approximate" (agent/core/syncengine.cpp, syncrules.cpp).
# Not any parenthesis: the CLI's "(via virt-clocksyncd)" and a variable
# clock's target note are no reason.
REASONS = (
    "stopped at the set jitter",
    "within target, but the verify's uncertainty",
    "RTC resolution",
    "the path was not quiet",
    "the domain stopped running during the refine",
    "stopped before its next set",
    "the last set failed",
    "out of attempts after",
)


def us(value, unit):
    return float(value) * UNIT[unit]


def main():
    guest, bound, slack, reading, line = (
        sys.argv[1],
        float(sys.argv[2]),
        float(sys.argv[3]),
        sys.argv[4],
        sys.argv[5],
    )
    intended = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    r = json.loads(reading)
    ruler, ruler_unc = r["offset_ns"] / 1000.0 - intended, r["uncertainty_ns"] / 1000.0
    text = "ruler %+.1f us (+/-%.1f, RTT %.1f us)%s" % (
        ruler,
        ruler_unc,
        r["rtt_ns"] / 1000.0,
        " relative to host %+.0f s" % (intended / 1e6) if intended else "",
    )
    m = re.search(re.escape(guest) + r": ([a-z-]+): ([a-z-]+)", line)
    if not m:
        return "%s; no daemon result for %s in: %s" % (text, guest, line.strip())
    outcome = m.group(2)
    if outcome not in ("synced", "approximate", "in-sync"):
        return "%s; daemon outcome '%s' is not a verified result" % (text, outcome)
    # "-> AFTER (+/-U)" after a set; "offset X (+/-U)" for in-sync (no set made)
    c = (
        re.search(r"-> " + NUM + r" \(\+/-([0-9.]+) (us|ms|s)\)", line)
        if outcome != "in-sync"
        else re.search(r"offset " + NUM + r" \(\+/-([0-9.]+) (us|ms|s)\)", line)
    )
    if not c:
        return "%s; daemon says '%s' but reports no verified offset: %s" % (text, outcome, line.strip())
    claim, claim_unc = us(c.group(1), c.group(2)), us(c.group(3), c.group(4))
    # The daemon's own stated uncertainty, plus the ruler's measured
    # repeatability and drift (SLACK_US): not the ruler's worst-case +/-RTT/2,
    # which would make the check looser than the bound it backs.
    allowed = claim_unc + slack
    text += "; daemon %s %+.1f us (+/-%.1f); |difference| %.1f us (allowed %.1f)" % (
        outcome,
        claim,
        claim_unc,
        abs(claim - ruler),
        allowed,
    )
    if outcome == "synced" and claim_unc > TOLERANCE_US:
        return "%s; 'synced' claimed with an uncertainty wider than the tolerance (%.0f us)" % (
            text,
            TOLERANCE_US,
        )
    if outcome == "approximate" and not any(r in line for r in REASONS):
        return "%s; 'approximate' without a reason: %s" % (text, line.strip())
    if outcome in ("approximate", "in-sync"):
        bound = max(bound, TOLERANCE_US)
    if abs(ruler) > bound:
        return "%s; residual beyond the bound %.0f us" % (text, bound)
    if abs(claim - ruler) > allowed:
        return "%s; the daemon's claim disagrees with the ruler" % text
    print("residual_us=%.1f %s" % (ruler, text))
    return 0


if __name__ == "__main__":
    rc = main()
    if rc:
        print(rc)
        sys.exit(1)
