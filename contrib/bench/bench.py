#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""virt-clocksync benchmarks, side by side with what operators use today.

Run as root on a lab machine:  python3 contrib/bench/bench.py [-n 30] [--daemon-cycles 100] [--mass 8]
(bench.sh installs what is needed, builds, and calls this.)

Every residual is measured independently of the method under test and of the
daemon's code: contrib/ruler/ruler.py (standard library only) reads the guest's
read-only reference agent on its own virtio port, straight from the host socket
(min-RTT of 30 samples). The ruler's repeatability on that guest path is
measured first (repeated readings of an idle guest, drift removed): it is the
floor under every number below. A qemu-ga on the host (true offset 0) checks
the ruler's arithmetic on a host-only path, nothing more.
"""
import argparse, collections, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "build", "release", "agent")
PY = None  # the staged ruler and set_scatter.py, readable by the lab user
LAB = ["bash", os.path.join(REPO, "contrib", "lab", "lab.sh")]
sys.path.insert(0, os.path.join(REPO, "contrib", "ruler"))
import ruler  # noqa: E402  the independent ruler


def sh(args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def lab(*args, check=True):
    return sh(LAB + list(args), check=check).stdout


def virsh(*args, check=True):
    return lab("virsh", *args, check=check)


def ruler_ns(sock, samples=30):
    r = ruler.read(sock, samples)
    return r["offset_ns"], r["rtt_ns"]


def calibrate(reps):
    """The ruler against a host qemu-ga (true offset 0): a check of its
    arithmetic on a host-only path (no QEMU, no virtio), not of the guest path."""
    d = tempfile.mkdtemp()
    sock = os.path.join(d, "qga.sock")
    listing = sh(["qemu-ga", "--block-rpcs=?"]).stdout.split()
    allowed = {"guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-info"}
    block = ",".join(x for x in listing if x not in allowed)
    p = subprocess.Popen(
        [
            "qemu-ga",
            "-m",
            "unix-listen",
            "-p",
            sock,
            "-t",
            d,
            "-f",
            os.path.join(d, "pid"),
            "--block-rpcs=" + block,
        ]
    )
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        vals = [ruler_ns(sock) for _ in range(reps)]
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    offs = [v[0] for v in vals]
    return {
        "bias_ns": statistics.median(offs),
        "spread_ns": max(offs) - min(offs),
        "rtt_min_ns": min(v[1] for v in vals),
        "samples": offs,
    }


def pause(guests, seconds):
    for g in guests:
        virsh("suspend", g)
    time.sleep(seconds)  # the scenario itself: a pause of this length
    t0 = time.time()
    procs = [subprocess.Popen(LAB + ["virsh", "resume", g], stdout=subprocess.DEVNULL) for g in guests]
    for p in procs:
        p.wait()
    return t0


class Daemon:
    def __init__(self, workdir, sync_lines=(), reconcile_timeout=60, engine_debug=False):
        self.log = os.path.join(workdir, "daemon.log")
        open(self.log, "w").close()
        os.chmod(self.log, 0o666)
        conf = os.path.join(workdir, "daemon.conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nuri = qemu:///session\n[sync]\n" + "".join(l + "\n" for l in sync_lines))
        os.chmod(conf, 0o644)
        # lab.sh run execs (setpriv, env, the daemon): self.p.pid is the daemon's own pid.
        # The engine's debug lines time each step of a sync (the latency breakdown).
        env = ["env", "QT_LOGGING_RULES=clocksync.engine.debug=true"] if engine_debug else []
        self.p = subprocess.Popen(
            LAB + ["run"] + env + [os.path.join(BIN, "virt-clocksyncd"), "--config", conf],
            stdout=open(self.log, "a"),
            stderr=subprocess.STDOUT,
        )
        self.wait_for(r"reconcile:", 0, reconcile_timeout)
        comm = open("/proc/%d/comm" % self.p.pid).read().strip()
        if comm != "virt-clocksyncd":
            raise RuntimeError("pid %d is '%s', not the daemon" % (self.p.pid, comm))

    def stats(self):
        """(context switches, CPU seconds) over all of the daemon's threads."""
        cs, ticks = 0, 0
        for task in os.listdir("/proc/%d/task" % self.p.pid):
            base = "/proc/%d/task/%s/" % (self.p.pid, task)
            try:
                st = open(base + "status").read()
                f = open(base + "stat").read().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # a thread that just ended
                continue
            cs += sum(int(x) for x in re.findall(r"ctxt_switches:\s+(\d+)", st))
            ticks += int(f[11]) + int(f[12])  # utime + stime of this thread
        return cs, ticks / os.sysconf("SC_CLK_TCK")

    def lines(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def wait_for(self, pattern, start, timeout, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [l for l in self.lines()[start:] if re.search(pattern, l)]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise RuntimeError("daemon: no '%s' within %d s" % (pattern, timeout))

    def stop(self):
        self.p.terminate()  # SIGTERM to the daemon itself
        if self.p.wait(timeout=30) != 0:
            raise RuntimeError("the daemon exited %d on SIGTERM" % self.p.returncode)


def latency_ms(line):
    m = re.search(r"([0-9.]+) ms after trigger", line)
    return float(m.group(1)) if m else None


def steps_ms(lines):
    """A one-guest sync's first steps from the engine's debug lines before its
    result line: trigger -> sync start (policy, domain facts, agent), the first
    measurement, the first set's reply; None where a step did not happen."""
    start = measure = set_reply = None
    for l in lines:
        m = re.search(r"started ([0-9.]+) ms after the trigger, measured in ([0-9.]+) ms", l)
        if m:
            start, measure = float(m.group(1)), float(m.group(2))
        m = re.search(r"attempt 1: set returned after ([0-9.]+) ms", l)
        if m:
            set_reply = float(m.group(1))
    return {"start_ms": start, "measure_ms": measure, "set_reply_ms": set_reply}


# Where the bounds section aims its single sets: host now + this (about a set's
# real delay here; the spread, not the mean, is what it measures).
SET_AIM_NS = 600000


def set_scatter(g, ref, trials, delay_ns=SET_AIM_NS):
    """contrib/bench/set_scatter.py on the lab guest (no daemon): where single
    sets land on the ruler, and how well the libvirt path's min-RTT reading
    agrees with the ruler."""
    out = json.loads(
        lab("run", "python3", os.path.join(PY, "set_scatter.py"), g, ref, str(trials), str(delay_ns))
    )
    t = out["trials"]
    delay_us = [(out["delay_ns"] - x["ruler_ns"]) / 1000 for x in t]

    def verify_err(n):
        return [(min(x["post"][:n])[1] - x["ruler_ns"]) / 1000 for x in t]

    def spread(v):
        return {
            "mean": statistics.mean(v),
            "stdev": statistics.stdev(v),
            "p5": pct(v, 5) if len(v) >= 20 else min(v),
            "p95": pct(v, 95) if len(v) >= 20 else max(v),
        }

    pre_rtt = [min(x["pre"])[0] / 1000 for x in t]
    mx, my = statistics.mean(pre_rtt), statistics.mean(delay_us)
    cov = sum((a - mx) * (b - my) for a, b in zip(pre_rtt, delay_us)) / (len(t) - 1)
    return {
        "n": len(t),
        "set_delay_us": spread(delay_us),
        "set_delay_median_us": statistics.median(delay_us),
        "corr_delay_pre_rtt": cov / statistics.stdev(pre_rtt) / statistics.stdev(delay_us),
        "verify_err_5_us": spread(verify_err(5)),
        "verify_err_10_us": spread(verify_err(10)),
        "set_reply_ms": statistics.median(x["set_reply_ns"] / 1e6 for x in t),
        "raw": out,
    }


def coarse_ms(line):
    """Trigger -> first verified within tolerance: the "within tolerance at"
    moment where a refine followed, else the end (one phase was enough);
    None when the guest was never verified within tolerance."""
    if not re.search(r": (synced|approximate|in-sync)", line):
        return None
    m = re.search(r"within tolerance at ([0-9.]+) ms", line)
    return float(m.group(1)) if m else latency_ms(line)


# The two ways a sync may refine, side by side: the window 0 is the engine
# with no refine phase (every further set at once), 5 s the two-phase default.
VARIANTS = [
    ("refine at once (window 0, no refine phase)", ["refine-window-seconds = 0"]),
    ("refine when quiet (window 5 s, default)", ["refine-window-seconds = 5"]),
]


def storm(work, n_guests, runs, pause_s):
    """n guests resumed at once, `runs` times per variant: when all are within
    tolerance (the last coarse moment), when all are done, and the ruler's
    |residual| of each guest once all are done."""
    lab("down")
    guests = lab("up", "-n", str(n_guests)).split()
    out = {"guests": n_guests, "variants": {}}
    for name, lines in VARIANTS:
        print("storm: %d guests, %s" % (n_guests, name), file=sys.stderr)
        daemon = Daemon(work, lines, reconcile_timeout=120)
        daemon.wait_for(r"reconcile:", 0, 120, count=len(guests))
        rs = []
        for _ in range(runs):
            start = len(daemon.lines())
            pause(guests, pause_s)
            got = daemon.wait_for(r"resumed: ", start, 120, count=len(guests))
            resid = [ruler_ns(lab("ref", x).strip())[0] / 1000.0 for x in guests]
            coarse = [coarse_ms(l) for l in got]
            rs.append(
                {
                    "residual_us": resid,
                    "coarse_ms": coarse,
                    "done_ms": [latency_ms(l) for l in got],
                    "outcomes": [re.search(r"resumed: ([a-z-]+)", l).group(1) for l in got],
                }
            )
        daemon.stop()
        out["variants"][name] = rs
    lab("down")
    return out


def debian(work, cycles, pause_s, set_trials, read_after_s=3.0):
    """The Debian 12 guest (systemd, Debian's own qemu-ga: every set waits for
    hwclock -w): per resume, the ruler DEBIAN_READ_AFTER after the resume
    command returned, then after the daemon's verdict; coarse and done latency."""
    lab("down")
    g = lab("up", "-n", "1", "--flavor", "debian").split()[0]
    ref = lab("ref", g).strip()
    out = {"read_after_s": read_after_s, "variants": {}}
    for name, lines in VARIANTS:
        print("debian guest: %s (%d cycles)" % (name, cycles), file=sys.stderr)
        daemon = Daemon(work, lines, reconcile_timeout=120)
        rs = []
        for _ in range(cycles):
            start = len(daemon.lines())
            t0 = pause([g], pause_s)
            time.sleep(max(0.0, t0 + read_after_s - time.time()))  # the reading moment is the scenario
            early = ruler_ns(ref)[0] / 1000.0
            line = daemon.wait_for(r"%s: resumed: " % g, start, 60)[0]
            rs.append(
                {
                    "at_read_us": early,
                    "after_verdict_us": ruler_ns(ref)[0] / 1000.0,
                    "coarse_ms": coarse_ms(line),
                    "done_ms": latency_ms(line),
                    "outcome": re.search(r"resumed: ([a-z-]+)", line).group(1),
                }
            )
        daemon.stop()
        out["variants"][name] = rs
    if set_trials >= 3:
        print("debian guest: bounds, %d single sets, no daemon" % set_trials, file=sys.stderr)
        out["bounds"] = set_scatter(g, ref, set_trials)
    lab("down")
    return out


def pct(v, q):
    """The q-th percentile (nearest rank), or None when there are too few
    samples for it to be anything but the maximum (fewer than 100/(100-q))."""
    v = sorted(v)
    if len(v) < 100.0 / (100 - q):
        return None
    return v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))]


def summary(values_us):
    a = [abs(x) for x in values_us]
    return {"n": len(a), "median": statistics.median(a), "p90": pct(a, 90), "p99": pct(a, 99), "max": max(a)}


def pct_text(s, key, fmt):
    """A percentile cell that says its n; the maximum when n is too small."""
    return fmt(s[key]) if s[key] is not None else "max %s" % fmt(s["max"])


def fmt_us(v):
    return "%.0f ms" % (v / 1000) if v >= 10000 else ("%.2f ms" % (v / 1000) if v >= 1000 else "%.1f us" % v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30, help="suspend/resume cycles per comparison method")
    ap.add_argument(
        "--daemon-cycles",
        type=int,
        default=100,
        help="suspend/resume cycles for virt-clocksyncd (>= 100 for a real p99)",
    )
    ap.add_argument("--repeat-reads", type=int, default=40, help="ruler readings for its repeatability")
    ap.add_argument("--pause", type=float, default=3.0)
    ap.add_argument("--mass", type=int, default=8, help="guests resumed at once in the storm (0: skip)")
    ap.add_argument("--idle", type=int, default=60, help="seconds of the idle-cost run")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--report", metavar="BENCH_JSON", help="only print the report of an earlier run")
    ap.add_argument("--storm-runs", type=int, default=3, help="mass resumes per refine variant")
    ap.add_argument("--debian-cycles", type=int, default=10, help="resumes of the Debian guest per variant")
    ap.add_argument("--set-trials", type=int, default=60, help="single sets measured in the bounds section")
    names = [sec.name for sec in SECTIONS]
    ap.add_argument(
        "--sections", default=",".join(names), help="comma-separated subset to run, of: %s" % ", ".join(names)
    )
    a = ap.parse_args()
    sections = set(a.sections.split(","))
    if sections - set(names):
        ap.error(
            "unknown section(s): %s (known: %s)"
            % (", ".join(sorted(sections - set(names))), ", ".join(names))
        )
    if a.report:
        with open(a.report) as f:
            report(json.load(f), os.path.dirname(os.path.abspath(a.report)))
        return
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp()
    try:
        run_sections(a, sections, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # staged binaries, daemon logs: nothing is left in /tmp


def run_sections(a, sections, work):
    """Every section asked for, in WORK (a temporary directory the caller removes)."""
    os.chmod(work, 0o755)
    # The lab user runs the daemon: stage binaries it can reach wherever the checkout lives.
    global BIN
    staged = os.path.join(work, "bin")
    os.makedirs(staged)
    for b in ("virt-clocksyncd", "virt-clocksync"):
        shutil.copy(os.path.join(BIN, b), staged)
        os.chmod(os.path.join(staged, b), 0o755)
    os.chmod(staged, 0o755)
    BIN = staged
    global PY
    PY = os.path.join(work, "py")
    os.makedirs(PY)
    for f in (
        os.path.join(REPO, "contrib", "ruler", "ruler.py"),
        os.path.join(REPO, "contrib", "bench", "set_scatter.py"),
    ):
        shutil.copy(f, PY)
        os.chmod(os.path.join(PY, os.path.basename(f)), 0o644)
    os.chmod(PY, 0o755)
    res = {
        "machine": sh(["uname", "-srm"]).stdout.strip(),
        "cpus": os.cpu_count(),
        "cycles": a.n,
        "daemon_cycles": a.daemon_cycles,
        "pause_s": a.pause,
    }

    print("checking the ruler on a host qemu-ga ...", file=sys.stderr)
    res["ruler_host_check"] = calibrate(20)

    lab("down")
    run = Run(a, work, res)
    run.g = lab("up", "-n", "1").split()[0]
    run.ref = lab("ref", run.g).strip()
    print("ruler repeatability on the guest path (%d readings) ..." % a.repeat_reads, file=sys.stderr)
    res["ruler_repeatability"] = ruler.repeatability(run.ref, a.repeat_reads)
    for sec in SECTIONS:  # in this order: the ones on the lab guest first, then their own guests
        if sec.name in sections:
            sec.run(run)
    lab("down")

    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    report(res, a.out)


class Run:
    """What the sections share: the arguments, a work directory, the results,
    and the lab guest (with its reference socket) the first sections use."""

    def __init__(self, a, work, res):
        self.a, self.work, self.res = a, work, res
        self.g = self.ref = None


def run_methods(run):
    a, g, ref = run.a, run.g, run.ref
    methods = [
        ("virsh domtime --now", lambda: virsh("domtime", g, "--now")),
        ("virsh domtime --sync", lambda: virsh("domtime", g, "--sync")),
        ("naive SetTime(now, ns)", None),
        ("virt-clocksyncd", None),
    ]
    run.res["methods"] = {}
    for name, action in methods:
        cycles = a.daemon_cycles if name == "virt-clocksyncd" else a.n
        print("method: %s (%d cycles)" % (name, cycles), file=sys.stderr)
        samples, lat, coarse, steps = [], [], [], []
        daemon = Daemon(run.work, engine_debug=True) if name == "virt-clocksyncd" else None
        for i in range(cycles):
            start = len(daemon.lines()) if daemon else 0
            pause([g], a.pause)
            if daemon:
                line = daemon.wait_for(r"%s: resumed: " % g, start, 60)[0]
                lat.append(latency_ms(line))
                coarse.append(coarse_ms(line))
                lines = daemon.lines()[start:]
                steps.append(steps_ms(lines[: lines.index(line)]))
            elif name.startswith("naive"):
                lab(
                    "run",
                    "python3",
                    "-c",
                    "import libvirt,time;c=libvirt.open('qemu:///session');d=c.lookupByName('%s');"
                    "n=time.time_ns();d.setTime({'seconds':n//10**9,'nseconds':n%%10**9})" % g,
                )
            else:
                action()
            off, rtt = ruler_ns(ref)
            samples.append(off / 1000.0)
        if daemon:
            daemon.stop()
        run.res["methods"][name] = {
            "residual_us": samples,
            "latency_ms": lat,
            "coarse_ms": coarse,
            "summary": summary(samples),
        }
        if steps:
            run.res["methods"][name]["steps_ms"] = steps


def run_bounds(run):
    if run.a.set_trials >= 3:
        print("bounds: %d single sets, no daemon" % run.a.set_trials, file=sys.stderr)
        run.res["bounds"] = set_scatter(run.g, run.ref, run.a.set_trials)


def run_storm(run):
    if run.a.mass:
        run.res["storm"] = storm(run.work, run.a.mass, run.a.storm_runs, run.a.pause)


def run_debian(run):
    if run.a.debian_cycles:
        bounds = run.a.set_trials // 2 if "bounds" in run.a.sections.split(",") else 0
        run.res["debian"] = debian(run.work, run.a.debian_cycles, run.a.pause, bounds)


def run_scale(run):
    """Scale without VMs (simulated guests, fake agents)."""
    scale = sh([os.path.join(REPO, "build", "release", "contrib", "bench", "bench_scale")]).stdout
    run.res["scale"] = json.loads(scale)


def run_restore(run):
    """Restore -> verified latency (agent reconnect included), then the idle cost."""
    res, work, g, a = run.res, run.work, run.g, run.a
    daemon = Daemon(work)
    restore_lat = []
    for i in range(min(a.n, 10)):
        start = len(daemon.lines())
        save = os.path.join(work, "g.save")
        sh(["chown", lab("user").strip(), work])
        virsh("save", g, save)
        t0 = time.time()
        virsh("restore", save)
        daemon.wait_for(r"%s: restored: " % g, start, 60)
        restore_lat.append((time.time() - t0) * 1000)
        os.remove(save)
    # Idle cost: no events for a while; the daemon's own process, every thread
    # (main loop, libvirt's event loop, workers): context switches and CPU.
    cs0, cpu0 = daemon.stats()
    threads = len(os.listdir("/proc/%d/task" % daemon.p.pid))
    time.sleep(a.idle)  # measuring idleness: nothing to wait for
    cs1, cpu1 = daemon.stats()
    daemon.stop()
    res["restore_to_verified_ms"] = restore_lat
    res["idle"] = {
        "seconds": a.idle,
        "threads": threads,
        "context_switches": cs1 - cs0,
        "cpu_seconds": cpu1 - cpu0,
    }


QUIET = "refine when quiet (window 5 s, default)"


def targets(res):
    """Issue 16's targets next to what this run measured (rows without data
    in this run are left out). Each number with its n; the ruler's
    repeatability (printed above) is the floor under all of them."""
    rows = []
    if "storm" in res and QUIET in res["storm"]["variants"]:
        runs = res["storm"]["variants"][QUIET]
        g = res["storm"]["guests"]
        coarse = [
            None if any(x is None for x in r["coarse_ms"]) else max(r["coarse_ms"]) / 1000 for r in runs
        ]
        allr = [abs(x) for r in runs for x in r["residual_us"]]
        worst = max(c for c in coarse if c is not None) if any(c is not None for c in coarse) else None
        rows.append(
            (
                "%d guests at once: all within tolerance, worst of %d runs" % (g, len(runs)),
                "<= 0.5 s",
                "never" if None in coarse else "%.2f s" % worst,
                None not in coarse and worst <= 0.5,
            )
        )
        med = statistics.median(allr)
        rows.append(
            (
                "%d guests at once: median \\|residual\\| after refine (n=%d)" % (g, len(allr)),
                "<= 60 us",
                fmt_us(med),
                med <= 60,
            )
        )
        rows.append(
            (
                "%d guests at once: max \\|residual\\| (n=%d)" % (g, len(allr)),
                "<= 250 us",
                fmt_us(max(allr)),
                max(allr) <= 250,
            )
        )
    if "debian" in res and QUIET in res["debian"]["variants"]:
        cyc = res["debian"]["variants"][QUIET]
        early = statistics.median(abs(c["at_read_us"]) for c in cyc)
        rows.append(
            (
                "Debian 12 guest: median \\|residual\\| %.0f s after resume (n=%d)"
                % (res["debian"]["read_after_s"], len(cyc)),
                "<= 50 us",
                fmt_us(early),
                early <= 50,
            )
        )
        co = [c["coarse_ms"] for c in cyc if c["coarse_ms"] is not None]
        dn = statistics.median(c["done_ms"] for c in cyc)
        cm = statistics.median(co) if co else None
        rows.append(
            (
                "Debian 12 guest: resume -> within tolerance / -> done, median (n=%d)" % len(cyc),
                "<= 1.2 s / <= 3 s",
                "%s / %.2f s" % ("never" if cm is None else "%.2f s" % (cm / 1000), dn / 1000),
                cm is not None and cm <= 1200 and dn <= 3000,
            )
        )
    if res.get("methods", {}).get("virt-clocksyncd"):
        d = res["methods"]["virt-clocksyncd"]
        s = d["summary"]
        rows.append(
            (
                "single guest: median \\|residual\\| (n=%d)" % s["n"],
                "<= 25 us",
                fmt_us(s["median"]),
                s["median"] <= 25 and s["n"] >= 100,
            )
        )
        rows.append(
            (
                "single guest: p99 \\|residual\\| (n=%d)" % s["n"],
                "<= 150 us",
                pct_text(s, "p99", fmt_us),
                s["p99"] is not None and s["p99"] <= 150,
            )
        )
        co = [x for x in d.get("coarse_ms", []) if x is not None]
        if co:
            rows.append(
                (
                    "resume event -> within tolerance, median (n=%d)" % len(co),
                    "<= 20 ms",
                    "%.1f ms" % statistics.median(co),
                    statistics.median(co) <= 20,
                )
            )
        rows.append(
            (
                "resume event -> done, median (n=%d)" % len(d["latency_ms"]),
                "<= 60 ms",
                "%.1f ms" % statistics.median(d["latency_ms"]),
                statistics.median(d["latency_ms"]) <= 60,
            )
        )
    if not rows:
        return
    print()
    print("### Targets")
    print()
    print("| metric | target | this run | met |")
    print("|---|---|---|---|")
    for name, target, got, ok in rows:
        print("| %s | %s | %s | %s |" % (name, target, got, "yes" if ok else "**no**"))


def bounds_report(b, rep, guest):
    if not b:
        return
    row = lambda name, v: print(
        "| %s | %.1f us | %.1f us | %.1f / %.1f us |" % (name, v["mean"], v["stdev"], v["p5"], v["p95"])
    )
    print()
    print(
        "### What bounds one guest's residual, %s (no daemon: %d single sets through libvirt, each read on the "
        "ruler)" % (guest, b["n"])
    )
    print()
    print("| quantity | mean | stdev | p5 / p95 |")
    print("|---|---|---|---|")
    row("where a set lands: its real delay (host clock read -> guest clock set)", b["set_delay_us"])
    row("libvirt-path reading (min RTT of 5) minus the ruler, right after a set", b["verify_err_5_us"])
    row("libvirt-path reading (min RTT of 10) minus the ruler, right after a set", b["verify_err_10_us"])
    print("| the ruler's own repeatability (lab guest, above) | - | %.1f us | - |" % rep["stdev_us"])
    print()
    print(
        "A set's reply takes %.1f ms (median: qemu-ga runs hwclock -w before it replies). The delay's correlation "
        "with the round trip measured just before the set: %.2f. One set cannot be placed closer than the "
        "delay's spread; a daemon verifies (to about the second row) and sets again, so its residual is the "
        "spread cut down by a few tries, not the verify's precision."
        % (b["set_reply_ms"], b["corr_delay_pre_rtt"])
    )


MS = lambda v: "%.1f ms" % v  # a duration in ms, as the report prints it


def render_ruler(res):
    rep = res["ruler_repeatability"]
    print("## Residual |offset| after suspend %.0f s / resume" % res["pause_s"])
    print()
    print(
        "Ruler: contrib/ruler/ruler.py (no code shared with the daemon) on the guest's read-only reference "
        "agent, own virtio port, host socket, min-RTT of 30 samples."
    )
    print()
    print(
        "| ruler on the guest path (idle guest, %d readings over %.0f s, drift %+.2f us/s removed) | value |"
        % (rep["reads"], rep["span_s"], rep["drift_us_per_s"])
    )
    print("|---|---|")
    print("| repeatability: stdev of a reading | %.1f us |" % rep["stdev_us"])
    print(
        "| repeatability: p95 / max \\|deviation\\| (n=%d) | %.1f / %.1f us |"
        % (rep["reads"], rep["p95_abs_dev_us"], rep["max_abs_dev_us"])
    )
    print(
        "| worst-case uncertainty of one reading (min RTT / 2) | %.1f us (RTT min %.1f, median %.1f us) |"
        % (rep["rtt_min_us"] / 2, rep["rtt_min_us"], rep["rtt_median_us"])
    )
    cal = res["ruler_host_check"]
    print()
    print(
        "Differences below the repeatability are not resolved. (Host-only check of the ruler's arithmetic, "
        "a qemu-ga on the host, true offset 0, no QEMU/virtio in the path: %+.1f us median, spread %.1f us, "
        "min RTT %.1f us; not subtracted.)"
        % (cal["bias_ns"] / 1000, cal["spread_ns"] / 1000, cal["rtt_min_ns"] / 1000)
    )


def render_methods(res):
    ms = MS
    now = res["methods"]["virsh domtime --now"]["summary"]["median"]
    print()
    print("| method | n | median | p90 | p99 | max | median vs `--now` |")
    print("|---|---|---|---|---|---|---|")
    for name, m in res["methods"].items():
        s = m["summary"]
        print(
            "| %s | %d | %s | %s | %s | %s | %s |"
            % (
                name,
                s["n"],
                fmt_us(s["median"]),
                pct_text(s, "p90", fmt_us),
                pct_text(s, "p99", fmt_us),
                fmt_us(s["max"]),
                "baseline"
                if name == "virsh domtime --now"
                else ("%.3gx" % (now / s["median"]) if s["median"] else "-"),
            )
        )
    d = res["methods"]["virt-clocksyncd"]["latency_ms"]
    c = [x for x in res["methods"]["virt-clocksyncd"].get("coarse_ms", []) if x is not None]
    print()
    print(
        "Latency resume event -> verified (daemon, n=%d): median %.1f ms, p99 %s%s."
        % (
            len(d),
            statistics.median(d),
            pct_text(summary(d), "p99", ms),
            "; -> within tolerance: median %.1f ms, p99 %s"
            % (statistics.median(c), pct_text(summary(c), "p99", ms))
            if c
            else "",
        )
    )
    st = res["methods"]["virt-clocksyncd"].get("steps_ms")
    if st:

        def med(key):
            v = [x[key] for x in st if x[key] is not None]
            return "%.1f ms (n=%d)" % (statistics.median(v), len(v)) if v else "-"

        print()
        print(
            "Phase 1's steps (daemon's debug lines, medians): trigger -> sync start (policy, domain facts, "
            "agent) %s; first measurement %s; first set's reply %s; then the verify."
            % (med("start_ms"), med("measure_ms"), med("set_reply_ms"))
        )


def render_bounds(res):
    bounds_report(res["bounds"], res["ruler_repeatability"], "the lab guest")


def render_restore(res):
    ms = MS
    if res.get("restore_to_verified_ms"):
        r = res["restore_to_verified_ms"]
        print()
        print(
            "Restore command -> verified (n=%d): median %.0f ms, %s."
            % (len(r), statistics.median(r), pct_text(summary(r), "p99", ms))
        )
    if "idle" in res:
        i = res["idle"]
        print()
        print(
            "Idle: %d s without events, the daemon process itself (%d threads): %d context switches, %.2f s CPU."
            % (i["seconds"], i["threads"], i["context_switches"], i["cpu_seconds"])
        )


def render_storm(res):
    st = res["storm"]
    print()
    print(
        "### %d guests resumed at once (%d runs per row, same guests, one after the other)"
        % (st["guests"], len(next(iter(st["variants"].values()))))
    )
    print()
    print(
        "| engine | all within tolerance (s, per run) | all done (s, per run) | \\|residual\\| median | p90 | max "
        "| n | outcomes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in st["variants"].items():
        allr = [abs(x) for run in runs for x in run["residual_us"]]

        def worst(run, key):
            v = run[key]
            return "never" if any(x is None for x in v) else "%.2f" % (max(v) / 1000)

        outc = {}
        for run in runs:
            for o in run["outcomes"]:
                outc[o] = outc.get(o, 0) + 1
        print(
            "| %s | %s | %s | %s | %s | %s | %d | %s |"
            % (
                name,
                ", ".join(worst(r, "coarse_ms") for r in runs),
                ", ".join(worst(r, "done_ms") for r in runs),
                fmt_us(statistics.median(allr)),
                pct_text(summary(allr), "p90", fmt_us),
                fmt_us(max(allr)),
                len(allr),
                ", ".join("%s %d" % kv for kv in sorted(outc.items())),
            )
        )


def render_debian(res):
    ms = MS
    de = res["debian"]
    print()
    print("### Debian 12 guest (systemd, Debian's qemu-guest-agent: each set replies after hwclock -w)")
    print()
    print(
        "| engine | n | \\|residual\\| %.0f s after resume: median / max | after the verdict: median / max "
        "| -> within tolerance: median | -> done: median / max | outcomes |" % de["read_after_s"]
    )
    print("|---|---|---|---|---|---|---|")
    for name, cyc in de["variants"].items():
        early = [abs(c["at_read_us"]) for c in cyc]
        late = [abs(c["after_verdict_us"]) for c in cyc]
        co = [c["coarse_ms"] for c in cyc if c["coarse_ms"] is not None]
        dn = [c["done_ms"] for c in cyc]
        outc = {}
        for c in cyc:
            outc[c["outcome"]] = outc.get(c["outcome"], 0) + 1
        print(
            "| %s | %d | %s / %s | %s / %s | %s | %s / %s | %s |"
            % (
                name,
                len(cyc),
                fmt_us(statistics.median(early)),
                fmt_us(max(early)),
                fmt_us(statistics.median(late)),
                fmt_us(max(late)),
                ms(statistics.median(co)) if co else "never",
                ms(statistics.median(dn)),
                ms(max(dn)),
                ", ".join("%s %d" % kv for kv in sorted(outc.items())),
            )
        )
    bounds_report(de.get("bounds"), res["ruler_repeatability"], "the Debian 12 guest")


def render_scale(res):
    print()
    print("| simulated guests | syncs | CPU per sync | peak RSS |")
    print("|---|---|---|---|")
    for s in res["scale"]:
        print(
            "| %d | %d | %.1f us | %.1f MiB |"
            % (s["guests"], s["syncs"], s["cpu_us_per_sync"], s["peak_rss_mib"])
        )


def plot(res, out):
    """Every residual of every method, one column each (gnuplot)."""
    if not res.get("methods"):
        return
    data = os.path.join(out, "residuals.dat")
    names = list(res["methods"])
    with open(data, "w") as f:
        for idx, name in enumerate(names):
            for v in res["methods"][name]["residual_us"]:
                f.write("%d %f\n" % (idx, max(abs(v), 0.1)))
    gp = """set terminal pngcairo size 900,500
set output '%s'
set logscale y
set ylabel '|residual| (us, log scale)'
set xtics (%s)
set xrange [-0.5:%f]
set grid ytics
set title 'Guest offset after suspend/resume, measured on the reference agent'
plot '%s' using ($1+(rand(0)-0.5)*0.3):2 with points pt 7 ps 0.6 notitle
""" % (
        os.path.join(out, "residuals.png"),
        ", ".join("'%s' %d" % (n, i) for i, n in enumerate(names)),
        len(names) - 0.5,
        data,
    )
    sh(["gnuplot"], input=gp)
    print()
    print("Plot: residuals.png; every sample: bench.json (next to this file)")


def report(res, out):
    """The markdown report: the ruler, then each section that has results."""
    render_ruler(res)
    for sec in SECTIONS:
        if any(res.get(k) for k in sec.keys):
            sec.render(res)
    targets(res)
    plot(res, out)


Section = collections.namedtuple("Section", "name keys run render")
# The one list of sections: run in this order (the ones on the lab guest
# first, then those with their own guests), reported in this order, each
# result under its keys in bench.json.
SECTIONS = (
    Section("methods", ("methods",), run_methods, render_methods),
    Section("bounds", ("bounds",), run_bounds, render_bounds),
    Section("restore", ("restore_to_verified_ms", "idle"), run_restore, render_restore),
    Section("storm", ("storm",), run_storm, render_storm),
    Section("debian", ("debian",), run_debian, render_debian),
    Section("scale", ("scale",), run_scale, render_scale),
)


if __name__ == "__main__":
    main()
