#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What bounds a set-and-verify daemon on this host, measured without the daemon.

    set_scatter.py GUEST REF_SOCKET TRIALS DELAY_NS   (as the libvirt user; JSON on stdout)

Each trial: 5 guest-get-time calls through libvirt (virDomainGetTime, the
daemon's path), one virDomainSetTime to host now + DELAY_NS, 10 more
get-time calls through libvirt, then one reading of the independent ruler on
the guest's reference agent. From these bench.py derives
- the set's scatter: where each set landed, on the ruler (the real delay of a
  set is DELAY_NS minus the ruler's offset); no daemon can place a single set
  closer than this spread, it can only verify and set again;
- the libvirt path's measurement error: the min-round-trip offset of the 5
  and of the 10 calls after the set, minus the ruler's reading (what a
  daemon's verify can resolve, next to the ruler's own repeatability).
It sets the clock of a lab guest only (never a host agent).
"""
import json
import sys
import time

import libvirt

import ruler


def now():
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def samples(dom, n):
    out = []
    for _ in range(n):
        before = now()
        t = dom.getTime()
        after = now()
        guest = t["seconds"] * 10**9 + t["nseconds"]
        out.append([after - before, guest - (before + after) // 2])  # [rtt, offset]
    return out


def main():
    guest, ref, trials, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    dom = libvirt.open("qemu:///session").lookupByName(guest)
    out = []
    for _ in range(trials):
        pre = samples(dom, 5)
        at = now() + delay
        before = now()
        dom.setTime({"seconds": at // 10**9, "nseconds": at % 10**9})
        reply = now() - before
        post = samples(dom, 10)
        r = ruler.read(ref, 30)
        out.append(
            {
                "pre": pre,
                "set_reply_ns": reply,
                "post": post,
                "ruler_ns": r["offset_ns"],
                "ruler_rtt_ns": r["rtt_ns"],
            }
        )
        time.sleep(0.2)  # the next trial starts from an idle guest, as a resume's first set does
    json.dump({"delay_ns": delay, "trials": out}, sys.stdout)


if __name__ == "__main__":
    main()
