"""The printed report: one row per system and viewer count, the summary (fixed and marginal CPU), the ratios
between the systems, the late joiners, and whether the goals were met."""

from __future__ import annotations

import math
import os

from measure import fmt, percentile

from media_cpu.measurement import LATE_HOLD_SEC, VIEWERS_PER_CLIENT

FIRST_FRAME_TARGET_SEC = 0.2
# Issue 13's goals, each a ratio to Janus in the same run (or a core budget).
MARGINAL_TREE_GOAL = 0.7
PER_VIEWER_SECOND_GOAL = 0.8
FIXED_PER_CAMERA_GOAL_CORES = 0.010
TREE = "whole tree"  # the pseudo-process: every measured process of a system together


def slope(rows: list[dict], key: str, a: int, b: int) -> float:
    ra = next((r for r in rows if r["n"] == a), None)
    rb = next((r for r in rows if r["n"] == b), None)
    if ra is None or rb is None or a == b:
        return math.nan
    return (rb["cpu"][key] / rb["window"] - ra["cpu"][key] / ra["window"]) / (b - a)


LABELS = {"icey": "icey-server worker", "reencode": "re-encode (aiortc)", "janus": "Janus streaming"}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _add_tree(rows: list[dict]) -> None:
    """Every row's CPU of all the system's measured processes together (icey: supervisor + API +
    worker; Janus: Janus + its ffmpeg feeder), as one more entry of its `cpu`."""
    for row in rows:
        row["cpu"][TREE] = sum(v for k, v in row["cpu"].items() if k != TREE and not math.isnan(v))


def print_report(args, res: dict, source_desc: str, t_total: float) -> None:
    w = print
    ok = {s: r for s, r in res.items() if "error" not in r}
    for r in ok.values():
        _add_tree(r["rows"])
    w("")
    w("=" * 120)
    w(f"Media CPU benchmark. Source: {source_desc}. {os.cpu_count()} CPUs.")
    w(f"Window {args.window:.0f} s per point, from {args.settle:.0f} s after every viewer had its first frame.")
    w(f"Viewers: aiortc recvonly H.264, not decoding, in separate client processes (<= {VIEWERS_PER_CLIENT} viewers "
      "each).")
    w("=" * 120)
    head = (f"{'system':<20}{'viewers':>8}{'cores':>7}{'CPU-s/viewer-s':>15}{'ms/frame':>9}{'fps avg':>8}"
            f"{'fps min':>8}{'Mbit/s/v':>9}{'burst fr':>9}{'UDP drops':>10}{'client cores':>13}{'other load':>11}")
    w(head)
    w("-" * len(head))
    for system, r in res.items():
        if system not in ok:
            w(f"{LABELS[system]:<20} FAILED: {r['error']}")
            continue
        key = r["headline"]
        for row in r["rows"]:
            n, win = row["n"], row["window"]
            cores = row["cpu"][key] / win
            own = sum(v for v in row["cpu"].values() if not math.isnan(v)) + row["client_cpu"]
            host = f"{row['host_busy'] - own / win:>11.2f}"
            if n == 0:
                w(f"{LABELS[system]:<20}{n:>8}{fmt(cores, '.3f'):>7}{'':>15}{'':>9}{'':>8}{'':>8}{'':>9}{'':>9}"
                  f"{'':>10}{'':>13}{host}")
                continue
            ms = 1000 * row["cpu"][key] / max(1, row["frames"])
            drops = "-" if row["drops_window"] is None else str(row["drops_window"])
            note = "" if row["with_frames"] == n else f"  only {row['with_frames']}/{n} viewers got a frame"
            w(f"{LABELS[system]:<20}{n:>8}{fmt(cores, '.3f'):>7}{fmt(cores / n, '.4f'):>15}{fmt(ms, '.2f'):>9}"
              f"{_mean(row['fps']):>8.1f}{min(row['fps']):>8.1f}{_mean(row['mbit']):>9.2f}{sum(row['squeezed']):>9}"
              f"{drops:>10}{row['client_cpu'] / win:>13.2f}{host}{note}")
        for key2 in list(r["rows"][0]["cpu"])[1:]:
            vals = " / ".join(fmt(row["cpu"][key2] / row["window"], ".3f") for row in r["rows"])
            counts = "/".join(str(row["n"]) for row in r["rows"])
            w(f"  {key2}{'' if key2 == TREE else ' process'}: {vals} cores at {counts} viewers")
        if r.get("idle_tree") is not None:
            w(f"  idle server, whole tree (no camera: one record source with no publisher): "
              f"{fmt(r['idle_tree'], '.4f')} cores")
        w("")
    w("cores: CPU-s of the process (utime+stime, all threads) / window s; CPU-s/viewer-s = cores / viewers;")
    w("ms/frame: CPU ms per frame delivered (summed over viewers); fps, Mbit/s/v (H.264 payload): the viewers' own")
    w("counters; burst fr: frames that arrived less than half a frame interval (RTP time) after the previous one, i.e.")
    w("replayed catch-up frames, summed over viewers; UDP drops: RcvbufErrors of the viewers' network namespace in the")
    w("window (the host namespace also counts other programs); other load: busy cores of the whole machine in the")
    w("window minus the measured processes and the clients (other programs sharing the 2 cores).")
    w("")

    w("Summary")
    head = (f"{'system':<20}{'fixed, 0 viewers':>18}{'marginal per viewer':>21}{'slope over':>12}"
            f"{'CPU-s/viewer-s at max':>23}{'join CPU per viewer':>22}")
    w(head)
    w("-" * len(head))
    marg: dict[str, float] = {}
    for system, r in ok.items():
        rows, key = r["rows"], r["headline"]
        counts = sorted(row["n"] for row in rows if row["n"] > 0)
        lo, hi = counts[0], counts[-1]
        marg[system] = slope(rows, key, lo, hi)
        fixed = rows[0]["cpu"][key] / rows[0]["window"]
        top = next(row for row in rows if row["n"] == hi)
        joins = [(row["setup_cpu"][key] - fixed * row["setup_s"]) / row["n"] for row in rows if row["n"] > 0]
        w(f"{LABELS[system]:<20}{fmt(fixed, '.3f') + ' cores':>18}{fmt(marg[system], '.4f') + ' cores':>21}"
          f"{f'{lo} -> {hi}':>12}{fmt(top['cpu'][key] / top['window'] / hi, '.4f'):>23}"
          f"{' / '.join(f'{1000 * j:.0f}' for j in joins) + ' ms':>22}")
        steps = [(0, lo)] + list(zip(counts, counts[1:], strict=False))
        w(f"{'':<20}{'':>18}  (per viewer, piecewise: "
          + ", ".join(f"{a} -> {b}: {fmt(slope(rows, key, a, b), '.4f')}" for a, b in steps) + " cores)")
    for system, r in ok.items():
        rows = r["rows"]
        if len(rows[0]["cpu"]) < 3:  # one measured process: its tree is itself
            continue
        counts = sorted(row["n"] for row in rows if row["n"] > 0)
        lo, hi = counts[0], counts[-1]
        top = next(row for row in rows if row["n"] == hi)
        w(f"{LABELS[system].split()[0] + ', whole tree':<20}"
          f"{fmt(rows[0]['cpu'][TREE] / rows[0]['window'], '.3f') + ' cores':>18}"
          f"{fmt(slope(rows, TREE, lo, hi), '.4f') + ' cores':>21}{f'{lo} -> {hi}':>12}"
          f"{fmt(top['cpu'][TREE] / top['window'] / hi, '.4f'):>23}")
    if "janus" in ok:
        jr = ok["janus"]["rows"]
        w(f"{'Janus ffmpeg feeder':<20}{fmt(jr[0]['cpu']['ffmpeg feeder'] / jr[0]['window'], '.3f') + ' cores':>18}"
          f"   (file demux + RTP packetizing for Janus; icey's worker does this itself)")
    w("join CPU per viewer (at each viewer count): the process's CPU from starting the clients to the window, minus")
    w("the fixed rate, per viewer: signalling, ICE, DTLS handshake and the first frames (icey: the replayed GOP).")
    w("")
    w("Ratios")
    if "icey" in marg and "janus" in marg:
        r = marg["icey"] / marg["janus"] if marg["janus"] > 0 else math.nan
        w(f"  marginal CPU per viewer, icey / Janus:       {fmt(r, '.2f')}x")
    if "icey" in marg and "reencode" in marg:
        r = marg["icey"] / marg["reencode"] if marg["reencode"] > 0 else math.nan
        w(f"  marginal CPU per viewer, icey / re-encode:   {fmt(r, '.4f')}x  "
          f"(re-encode costs {fmt(1 / r, '.0f')}x more)")
    if "icey" in ok and "janus" in ok:
        fi, fj = ok["icey"]["rows"][0], ok["janus"]["rows"][0]
        ci, cj = fi["cpu"]["worker"] / fi["window"], fj["cpu"]["janus"] / fj["window"]
        cf = fj["cpu"]["ffmpeg feeder"] / fj["window"]
        w(f"  fixed CPU per source, icey / Janus:          {fmt(ci / cj if cj else math.nan, '.2f')}x  "
          f"(icey / (Janus + its ffmpeg feeder): {fmt(ci / (cj + cf) if cj + cf else math.nan, '.2f')}x)")
    for system in ("icey", "janus"):
        if system in ok:
            top = max(ok[system]["rows"], key=lambda row: row["n"])
            key = ok[system]["headline"]
            ok[system]["top_per"] = top["cpu"][key] / top["window"] / top["n"]
    if "icey" in ok and "janus" in ok:
        w(f"  CPU-s per viewer-second at {max(args.counts)} viewers, icey / Janus: "
          f"{fmt(ok['icey']['top_per'] / ok['janus']['top_per'], '.2f')}x")
    tree = _tree_ratios(args, ok)
    if tree:
        w("  whole tree (icey: supervisor + API + worker; Janus: Janus + its ffmpeg feeder):")
        w(f"    marginal CPU per viewer, icey / Janus:     {fmt(tree['marginal'], '.2f')}x  "
          f"({fmt(tree['marginal_icey'], '.4f')} vs {fmt(tree['marginal_janus'], '.4f')} cores)")
        w(f"    CPU-s per viewer-second at {max(args.counts)} viewers, icey / Janus: {fmt(tree['per_vs'], '.2f')}x")
        w(f"    fixed CPU per camera, no viewers: icey {fmt(tree['fixed_icey'], '.4f')} cores (whole tree "
          f"{fmt(tree['tree0'], '.4f')} - idle server {fmt(tree['idle'], '.4f')}) vs Janus + feeder "
          f"{fmt(tree['fixed_janus'], '.4f')}: {fmt(tree['fixed'], '.2f')}x")
    w("")
    late_rows = {s: r["late"] for s, r in ok.items() if r.get("late")}
    if late_rows:
        w(f"Late joiners: {args.late} viewers join one at a time after random gaps of 0.4-2.4 s (so anywhere in the "
          "2 s GOP) while 1 viewer watches;")
        w("first frame = stream request (WHEP POST / Janus 'watch') -> first IDR frame complete at the receiver.")
        head = (f"{'system':<20}{'got one':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'> 1 s':>6}{'answer p50 s':>13}"
                f"{f'frames in first {LATE_HOLD_SEC} s, p50':>28}")
        w(head)
        w("-" * len(head))
        for system, late in late_rows.items():
            js = late["joiners"]
            firsts = [j["first_key"] for j in js if j.get("first_key") is not None]
            answers = [j["answer"] for j in js if j.get("answer") is not None]
            held = [j["frames_hold"] for j in js if j.get("first_key") is not None]
            w(f"{LABELS[system]:<20}{f'{len(firsts)}/{len(js)}':>8}{fmt(percentile(firsts, 50), '.3f'):>8}"
              f"{fmt(percentile(firsts, 95), '.3f'):>8}{fmt(max(firsts) if firsts else math.nan, '.3f'):>8}"
              f"{sum(f > 1.0 for f in firsts):>6}{fmt(percentile(answers, 50), '.3f'):>13}"
              f"{fmt(percentile(held, 50), '.0f'):>28}")
            w(f"{'':<22}all: {' '.join(f'{f:.2f}' for f in sorted(firsts))}")
            if system == "janus":
                setups = [j["setup"] for j in js if j.get("setup") is not None]
                w(f"{'':<22}(Janus session create + attach before 'watch' add p50 "
                  f"{fmt(percentile(setups, 50), '.3f')} s)")
            errs = [j["error"] for j in js if j.get("error")]
            if errs:
                w(f"{'':<22}errors: {errs[:3]}")
        w(f"  answer: request -> SDP answer (Janus: offer) received; frames in first {LATE_HOLD_SEC} s: frames "
          f"received in the {LATE_HOLD_SEC} s")
        w(f"  from the first IDR on ({30 * LATE_HOLD_SEC:.0f} = live pace; more = a replayed catch-up burst).")
        w("")
    w("Goals")
    if "icey" in marg and "janus" in marg:
        r = marg["icey"] / marg["janus"] if marg["janus"] > 0 else math.nan
        w(f"  marginal cost per viewer at or below Janus's: icey {fmt(marg['icey'], '.4f')} vs Janus "
          f"{fmt(marg['janus'], '.4f')} cores ({fmt(r, '.2f')}x): {'MET' if r <= 1.0 else 'NOT MET'}")
    if tree:
        for label, value, goal in (("marginal CPU per viewer, whole tree", tree["marginal"], MARGINAL_TREE_GOAL),
                                   (f"CPU per viewer-second at {max(args.counts)} viewers, whole tree",
                                    tree["per_vs"], PER_VIEWER_SECOND_GOAL)):
            w(f"  {label}: {fmt(value, '.2f')}x Janus (goal <= {goal}x): "
              f"{'MET' if value <= goal else 'NOT MET'}")
        met = tree["fixed_icey"] <= FIXED_PER_CAMERA_GOAL_CORES and tree["fixed_icey"] < tree["fixed_janus"]
        w(f"  fixed CPU per camera: {fmt(tree['fixed_icey'], '.4f')} cores (goal <= {FIXED_PER_CAMERA_GOAL_CORES} "
          f"and below Janus + feeder {fmt(tree['fixed_janus'], '.4f')}): {'MET' if met else 'NOT MET'}")
    if "icey" in late_rows:
        firsts = [j["first_key"] for j in late_rows["icey"]["joiners"] if j.get("first_key") is not None]
        n_all = len(late_rows["icey"]["joiners"])
        p50, p95 = percentile(firsts, 50), percentile(firsts, 95)
        verdict = "MET" if len(firsts) == n_all and p95 < FIRST_FRAME_TARGET_SEC else "NOT MET"
        w(f"  late joiner first frame under {FIRST_FRAME_TARGET_SEC} s: icey p50 {fmt(p50, '.3f')} s, "
          f"p95 {fmt(p95, '.3f')} s: {verdict} (at p50: {'MET' if p50 < FIRST_FRAME_TARGET_SEC else 'NOT MET'})")
    w("")
    if "reencode" in ok:
        w(f"note: re-encode measured at {', '.join(map(str, args.reencode_counts))} viewers only (not "
          f"{max(args.counts)}): one libx264 encoder per viewer saturates these 2 cores at about 4-5 viewers. Its "
          "fixed CPU is ~0 because MediaPlayer starts decoding only with the first viewer.")
    for system, r in ok.items():
        le = r.get("log_errors")
        if le:
            w(f"note: {LABELS[system]} log: {le['lines']} lines, {le['error']} with ERROR/Traceback, "
              f"{le['warning']} with WARNING")
        for row in r.get("rows", []):
            if row.get("errors"):
                w(f"note: {LABELS[system]} {row['n']} viewers: connect errors {row['errors'][:2]}")
    w(f"total run {t_total:.0f} s")


def _tree_ratios(args, ok: dict) -> dict:
    """Issue 13's figures over whole process trees, icey against Janus in the same run (empty
    without both)."""
    if "icey" not in ok or "janus" not in ok:
        return {}
    ir, jr = ok["icey"]["rows"], ok["janus"]["rows"]
    counts = sorted(row["n"] for row in ir if row["n"] > 0)
    lo, hi = counts[0], counts[-1]
    mi, mj = slope(ir, TREE, lo, hi), slope(jr, TREE, lo, hi)
    ti, tj = (next(row for row in rows if row["n"] == hi) for rows in (ir, jr))
    per_i, per_j = ti["cpu"][TREE] / ti["window"] / hi, tj["cpu"][TREE] / tj["window"] / hi
    tree0 = ir[0]["cpu"][TREE] / ir[0]["window"]
    idle = ok["icey"].get("idle_tree", math.nan)
    fixed_j = jr[0]["cpu"][TREE] / jr[0]["window"]
    return {"marginal_icey": mi, "marginal_janus": mj, "marginal": mi / mj if mj > 0 else math.nan,
            "per_vs": per_i / per_j if per_j > 0 else math.nan, "tree0": tree0, "idle": idle,
            "fixed_icey": tree0 - idle, "fixed_janus": fixed_j,
            "fixed": (tree0 - idle) / fixed_j if fixed_j > 0 else math.nan}
