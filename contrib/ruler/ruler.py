#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The independent ruler: a guest's clock offset, read through a guest agent's
host socket by code that shares nothing with virt-clocksync (standard library
only, its own protocol handling, its own clock reads).

    ruler.py read SOCKET [--samples N] [--all]
        one reading: every sample's host-before / host-after / guest time and
        the offset at the minimum round trip, with its uncertainty (RTT/2)
    ruler.py repeat SOCKET [--reads N] [--interval S] [--samples N]
        N readings of an undisturbed guest: a straight line (guest drift) is
        fitted and removed; the spread of what remains is how far two readings
        of the same clock disagree, the floor under every accuracy claim

Output is one JSON object. Times are CLOCK_REALTIME nanoseconds of this host.
The socket is meant to be the guest's read-only reference agent (every
state-changing command blocked); the ruler only ever sends
guest-sync-delimited and guest-get-time.
"""
import argparse
import json
import os
import random
import socket
import statistics
import sys
import time

_now = lambda: time.clock_gettime_ns(time.CLOCK_REALTIME)


class Agent:
    """A guest agent over a unix stream socket (QEMU chardev host end)."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self._resync()

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("guest agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _resync(self):
        # A leading 0xFF makes the agent drop any half-read request of an
        # earlier client; the reply to guest-sync-delimited starts with 0xFF,
        # and everything before it (stale replies) is discarded.
        token = random.randrange(1, 2**31)
        req = {"execute": "guest-sync-delimited", "arguments": {"id": token}}
        self.sock.sendall(b"\xff" + json.dumps(req).encode() + b"\n")
        while True:
            while b"\xff" not in self.buf:
                self.buf = b""
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError("guest agent closed the connection during sync")
                self.buf += chunk
            self.buf = self.buf.split(b"\xff", 1)[1]
            reply = json.loads(self._line())
            if reply.get("return") == token:
                return

    def get_time(self):
        """(host_before_ns, host_after_ns, guest_ns)"""
        before = _now()
        self.sock.sendall(b'{"execute":"guest-get-time"}\n')
        line = self._line()
        after = _now()
        reply = json.loads(line)
        if "return" not in reply:
            raise RuntimeError("guest-get-time failed: %s" % line.decode(errors="replace"))
        return before, after, int(reply["return"])


def read(path, samples=30):
    """One reading: the sample with the smallest round trip decides."""
    agent = Agent(path)
    try:
        taken = [agent.get_time() for _ in range(samples)]
    finally:
        agent.close()
    best = min(taken, key=lambda s: s[1] - s[0])
    before, after, guest = best
    rtt = after - before
    return {
        # guest minus host at the middle of the round trip; the true offset
        # lies within +/- rtt/2 of it whatever the split of the round trip
        "offset_ns": guest - (before + after) // 2,
        "uncertainty_ns": rtt // 2,
        "rtt_ns": rtt,
        "rtt_median_ns": int(statistics.median(s[1] - s[0] for s in taken)),
        "at_ns": (before + after) // 2,
        "samples": [list(s) for s in taken],
    }


def repeatability(path, reads=40, interval=0.25, samples=30):
    """Readings of a clock nobody touches, guest drift removed by a least-squares line."""
    rs = []
    for i in range(reads):
        if i:
            time.sleep(interval)  # spacing of the readings, not synchronisation
        r = read(path, samples)
        rs.append((r["at_ns"], r["offset_ns"], r["rtt_ns"]))
    t0 = rs[0][0]
    xs = [(t - t0) / 1e9 for t, _, _ in rs]
    ys = [o / 1000.0 for _, o, _ in rs]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    a = sorted(abs(r) for r in resid)
    return {
        "reads": len(rs),
        "span_s": xs[-1],
        "drift_us_per_s": slope,  # guest clock rate error (us/s = ppm)
        "stdev_us": statistics.pstdev(resid),
        "max_abs_dev_us": a[-1],
        "p95_abs_dev_us": a[min(len(a) - 1, int(round(0.95 * (len(a) - 1))))],
        "rtt_min_us": min(r for _, _, r in rs) / 1000.0,
        "rtt_median_us": statistics.median(r for _, _, r in rs) / 1000.0,
        "residuals_us": resid,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read", help="one reading (offset at min RTT)")
    r.add_argument("socket")
    r.add_argument("--samples", type=int, default=30)
    r.add_argument("--all", action="store_true", help="include every sample")
    p = sub.add_parser("repeat", help="repeatability on an undisturbed guest")
    p.add_argument("socket")
    p.add_argument("--reads", type=int, default=40)
    p.add_argument("--interval", type=float, default=0.25)
    p.add_argument("--samples", type=int, default=30)
    a = ap.parse_args()
    if a.cmd == "read" and a.samples < 1 or a.cmd == "repeat" and (a.reads < 3 or a.samples < 1):
        ap.error("need --samples >= 1 (and --reads >= 3)")
    try:
        if a.cmd == "read":
            out = read(a.socket, a.samples)
            if not a.all:
                del out["samples"]
        else:
            out = repeatability(a.socket, a.reads, a.interval, a.samples)
    except (OSError, ConnectionError, RuntimeError, ValueError) as e:
        print("ruler: %s: %s" % (a.socket, e), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
