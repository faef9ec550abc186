"""Figures of a run from its raw samples, the verdict, JSON lines and a markdown row.

Pacing lateness comes from the service's Prometheus histogram (delta over the
steady-state window). Its buckets are coarse (0.5, 1, 2, 5, 10 … ms), so p50 and
p99 are interpolated linearly inside their bucket, as Prometheus'
`histogram_quantile` does, and "max" is only the upper bound of the highest
non-empty bucket. Whether p99 ≤ 2 ms is exact: 2 ms is a bucket bound.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.codecs import CallCodec

PREFIX = "sentiric_media_"
PACING = PREFIX + "pacing_lateness_seconds"
PACING_P99_LIMIT = 0.002
GENERATOR_BUSY_LIMIT = 0.85  # above this share of its core the generator may be the limit


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def labelled(after: dict[str, float], before: dict[str, float], name: str) -> dict[str, int]:
    """Deltas of a labelled counter family, by label set (only the non-zero ones)."""
    result = {}
    for key, value in after.items():
        if key.startswith(name + "{"):
            change = int(value - before.get(key, 0.0))
            if change:
                result[key[len(name) + 1 : -1]] = change
    return result


def pacing(after: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    """Lateness quantiles from the histogram delta (interpolated within buckets)."""
    buckets: list[tuple[float, float]] = []
    for key, value in after.items():
        if key.startswith(PACING + "_bucket{le="):
            bound_text = key.split('le="', 1)[1].rstrip('"}')
            bound = float("inf") if bound_text == "+Inf" else float(bound_text)
            buckets.append((bound, value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return {"ticks": 0}

    def quantile(q: float) -> float:
        rank, lower, below = q * total, 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= rank:
                if bound == float("inf"):
                    return lower
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower

    highest = next(b for b, c in buckets if c >= total)
    within_limit = next((c for b, c in buckets if b >= PACING_P99_LIMIT), 0.0)
    return {
        "ticks": int(total),
        "p50_ms": quantile(0.5) * 1000,
        "p99_ms": quantile(0.99) * 1000,
        "max_bucket_ms": highest * 1000,  # max ≤ this (inf: above the last finite bound)
        "mean_ms": delta(after, before, PACING + "_sum") / total * 1000,
        "share_within_2ms": within_limit / total,
    }


def codec_of(codec: CallCodec) -> dict[str, Any]:
    """The codec of a run as its JSON names it."""
    return {
        "name": codec.codec.name,
        "payload_type": codec.payload_type,
        "sdp": codec.negotiate,
        "label": codec.label,
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
    }


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run and its verdict, from the raw samples."""
    calls, window_s = raw["calls"], raw["window_s"]
    m_ws, m_we = raw["metrics"]["window_start"], raw["metrics"]["window_end"]
    m_base, m_final = raw["metrics"]["baseline"], raw["metrics"]["final"]
    rtp, ctl = raw["rtp"], raw["control"]
    svc_cpu = raw["service"]["cpu_window_s"] / window_s
    idle_cpu = raw["service"]["cpu_idle_s"] / max(raw["service"]["idle_s"], 1e-9)
    rss_idle, rss = raw["service"]["rss_idle_kb"], raw["service"]["rss_window_kb"]
    gen = {name: seconds / window_s for name, seconds in raw["generator_cpu_s"].items()}
    pkt = PREFIX + "rtp_packets_"
    inbound = {
        "sent_window": rtp["window"].get("sent", 0),
        "received_window": int(delta(m_we, m_ws, pkt + "received_total")),
        "sent_total": rtp["sent_total"],
        "received_total": int(delta(m_final, m_base, pkt + "received_total")),
        "lost_window": int(delta(m_we, m_ws, pkt + "lost_total")),
        "lost_total": int(delta(m_final, m_base, pkt + "lost_total")),
        "dropped_window": labelled(m_we, m_ws, pkt + "dropped_total"),
        "dropped_total": labelled(m_final, m_base, pkt + "dropped_total"),
    }
    outbound = {
        "service_sent_total": int(delta(m_final, m_base, pkt + "sent_total")),
        "received_total": rtp["prompt_received_total"],
        "expected_total": rtp["prompt_expected_total"],
        "lost_total": rtp["prompt_lost_total"],
        "expected_window": rtp["window"].get("prompt_expected", 0),
        "received_window": rtp["window"].get("prompt_received", 0),
        "lost_window": rtp["window"].get("prompt_lost", 0),
        # packets the service sent in the window per packet due in real time (< 1: behind)
        "rate_ratio": rtp["window"].get("prompt_expected", 0)
        / max(1.0, rtp["window"].get("calls_receiving", 0) * window_s * 50),
        "calls_silent": rtp["prompt_calls_silent"],
        "payload_type": rtp["payload_type"],
        "wrong_payload_type": rtp["wrong_payload_type"],  # {payload type: packets}
        "first_payload_bytes": rtp["first_payload_bytes"],  # {size: calls}
    }
    live: dict[str, Any] = {}
    if raw["record_audio"]:
        per_call = window_s * 1000 / raw["frame_ms"]
        live = {
            "messages_window": ctl["record_window_messages"],
            "messages_expected_window": int(per_call * calls),
            "audio_ratio_window": ctl["record_window_bytes"]
            / max(1.0, window_s * raw["record_rate"] * 2 * calls),
            "dropped_total": int(
                delta(m_final, m_base, PREFIX + "live_audio_messages_dropped_total")
            ),
            "streams_ended_ok": ctl["record_streams_ended_ok"],
        }
    result: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": raw["machine"],
        "calls": calls,
        "record_audio": raw["record_audio"],
        "events": raw.get("events", False),
        "event_counts": raw.get("control", {}).get("events", {}),
        "reaction_ms": raw.get("control", {}).get("reaction_ms", {}),
        "keyword_hits": raw.get("control", {}).get("keyword_hits", {}),
        "frame_ms": raw["frame_ms"] if raw["record_audio"] else None,
        "codec": codec_of(raw["codec"]),
        "window_s": round(window_s, 2),
        "service_cpu_pct": round(svc_cpu * 100, 1),
        "service_idle_cpu_pct": round(idle_cpu * 100, 1),
        "cpu_us_per_call_s": round(svc_cpu * 1e6 / calls, 1),
        "rss_mb": round(rss / 1024, 1),
        "rss_idle_mb": round(rss_idle / 1024, 1),
        "rss_kb_per_call": round((rss - rss_idle) / calls, 1),
        "rss_peak_mb": round(raw["service"]["rss_peak_kb"] / 1024, 1),
        "pacing": pacing(m_we, m_ws),
        "frames_skipped": int(delta(m_final, m_base, PREFIX + "pacing_frames_skipped_total")),
        "interarrival": rtp["interarrival"],
        "generator_send_lateness": rtp["send_lateness"],
        "inbound": inbound,
        "outbound": outbound,
        "live": live,
        "generator_cpu_pct": {k: round(v * 100, 1) for k, v in gen.items()},
        "cpu_busy": {k: round(v, 3) for k, v in raw["cpu_busy"].items()},
        # share of the window each main thread was runnable but not running
        "runqueue_wait": {k: round(v / window_s, 4) for k, v in raw["runqueue_wait_s"].items()},
        "kernel_udp_drops": raw["udp_drops"],
        "control": {k: ctl[k] for k in ("calls_set_up", "released", "errors", "first_errors")},
        "recording": {
            "enabled": raw.get("recording", False),
            "started": ctl["recordings_started"],
            "stored": ctl["recordings_stored"],
            "recorded_s": round(ctl["recorded_ms"] / 1000, 1),
            "stop_ms": ctl["stop_recording_ms"],
        },
        "setup_ms": ctl["setup_ms"],
        "ramp_s_actual": round(ctl["ramp_done_at"] - ctl["ramp_started_at"], 2),
        "service_log": raw["log"],
        "service_exit_code": raw["exit_code"],
        "rtp_extra": {
            k: rtp[k]
            for k in ("send_errors", "duplicates", "reordered", "unknown_source", "calls_activated")
        },
    }
    result["failures"], result["warnings"], noise = verdict(result, raw)
    result["passed"] = not result["failures"]
    # Something other than the service took CPU from it or from the generator.
    result["disturbed"] = bool(noise)
    return result


def verdict(r: dict[str, Any], raw: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Why the run fails the target (p99 ≤ 2 ms, no loss, no error), doubts about it, and
    which of the doubts are disturbance from outside the service (`noise`)."""
    failures, warnings, noise = [], [], []
    p = r["pacing"]
    if not p.get("ticks") or p["share_within_2ms"] < 0.99:
        failures.append(f"pacing p99 {p.get('p99_ms', float('nan')):.2f} ms > 2 ms")
    if r["frames_skipped"]:
        failures.append(f"{r['frames_skipped']} frames skipped")
    out, inb = r["outbound"], r["inbound"]
    if out["lost_window"] or out["lost_total"] or out["calls_silent"]:
        failures.append(
            f"prompt loss: {out['lost_window']} in window, {out['lost_total']} in run, "
            f"{out['calls_silent']} calls silent"
        )
    if out["wrong_payload_type"]:
        failures.append(
            f"prompt payload type not {out['payload_type']}: {out['wrong_payload_type']}"
        )
    if inb["lost_total"] or inb["dropped_total"] or inb["received_total"] < inb["sent_total"]:
        failures.append(
            f"inbound: sent {inb['sent_total']}, service got {inb['received_total']}, "
            f"lost {inb['lost_total']}, dropped {inb['dropped_total']}"
        )
    if r["live"] and (r["live"]["dropped_total"] or r["live"]["audio_ratio_window"] < 0.99):
        failures.append(
            f"RecordAudio: {r['live']['dropped_total']} dropped, "
            f"{r['live']['audio_ratio_window']:.3f} of the audio in window"
        )
    if r["control"]["errors"] or r["control"]["calls_set_up"] < r["calls"]:
        failures.append(f"gRPC errors: {r['control']['errors']}")
    if r["service_log"]["tracebacks"] or r["service_log"]["levels"].get("ERROR"):
        failures.append(f"service log: {r['service_log']['levels']}, tracebacks")
    if raw["service"]["idle_s"] < 1.0:
        warnings.append(f"idle baseline only {raw['service']['idle_s']:.1f} s: slow warm-up")
    if r["ramp_s_actual"] > raw["ramp_s"] + raw["settle_s"]:
        warnings.append(f"ramp took {r['ramp_s_actual']} s: the window includes set-up")
    busy = r["cpu_busy"].get(f"cpu{raw['generator_cpu']}", 0.0)
    if busy > GENERATOR_BUSY_LIMIT:
        warnings.append(f"generator core {busy:.0%} busy: the generator may be the limit")
        noise.append(warnings[-1])
    late = r["generator_send_lateness"].get("p99_us", 0.0)
    if late > 2000:
        warnings.append(f"generator sends late (p99 {late / 1000:.1f} ms)")
        noise.append(warnings[-1])
    svc_core = r["cpu_busy"].get(f"cpu{raw['service_cpu']}", 0.0)
    if svc_core - r["service_cpu_pct"] / 100 > 0.10:
        warnings.append(
            f"service core {svc_core:.0%} busy, service itself {r['service_cpu_pct']}%: "
            "other processes share its core"
        )
        noise.append(warnings[-1])
    waited = r["runqueue_wait"].get("service", 0.0)
    if waited > 0.02:
        warnings.append(f"service loop waited for its CPU {waited:.1%} of the window")
        noise.append(warnings[-1])
    if r["kernel_udp_drops"]:
        warnings.append(f"kernel UDP drops (system-wide): {r['kernel_udp_drops']}")
    return failures, warnings, noise


def write_jsonl(result: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"loadgen-{time.strftime('%Y%m%d')}.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps(result, sort_keys=True) + "\n")
    return path


TABLE_HEADER = (
    "| date | machine | calls | codec | RecordAudio | service CPU | µs CPU/call/s | RSS (per call) "
    "| pacing p50 / p99 / max | prompt inter-arrival p50 / p99 | loss out / in | live audio "
    "| generator CPU | verdict |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def table_row(r: dict[str, Any]) -> str:
    p, ia = r["pacing"], r["interarrival"]
    mach = r["machine"]
    max_text = "∞" if p.get("max_bucket_ms") == float("inf") else f"≤{p.get('max_bucket_ms', 0):g}"
    live = "—"
    if r["live"]:
        live = (
            f"{r['live']['messages_window']}/{r['live']['messages_expected_window']} msgs, "
            f"{r['live']['dropped_total']} dropped"
        )
    gen_total = sum(r["generator_cpu_pct"].values())
    out, inb = r["outbound"], r["inbound"]
    lost_in = inb["lost_total"] + sum(inb["dropped_total"].values())
    lost_in += max(0, inb["sent_total"] - inb["received_total"])
    record = f"{r['frame_ms']} ms frames" if r["record_audio"] else "no"
    if r.get("recording", {}).get("enabled"):
        record += " + recording"
    if r.get("events"):
        counts = r.get("event_counts", {})
        record += f" + StreamEvents (VAD; {counts.get('speech_started', 0)} speech starts"
        reaction = r.get("reaction_ms") or {}
        if reaction.get("count"):
            record += (
                f"; {reaction['count']} barge-ins, reaction p50 {reaction['p50']} / "
                f"p95 {reaction['p95']} ms"
            )
        if counts.get("keyword") or counts.get("emotion"):
            record += f"; {counts.get('keyword', 0)} keywords, {counts.get('emotion', 0)} emotions"
        record += ")"
    verdict_text = "pass" if r["passed"] else "FAIL: " + "; ".join(r["failures"])
    if r["warnings"]:
        verdict_text += " (" + "; ".join(r["warnings"]) + ")"
    return (
        f"| {r['time'][:10]} | {mach['cpu_model']}, {mach['cores']} cores, Python "
        f"{mach['python']} | {r['calls']} | {r['codec']['label']} | "
        f"{record} | "
        f"{r['service_cpu_pct']} % | {r['cpu_us_per_call_s']:.0f} | "
        f"{r['rss_mb']} MB ({r['rss_kb_per_call']:.0f} kB) | "
        f"{p.get('p50_ms', 0):.2f} / {p.get('p99_ms', 0):.2f} / {max_text} ms | "
        f"{ia.get('p50_us', 0) / 1000:.2f} / {ia.get('p99_us', 0) / 1000:.2f} ms | "
        f"{out['lost_total']} / {lost_in} | {live} | {gen_total:.0f} % | {verdict_text} |"
    )


def _sizes(counts: dict[Any, int]) -> str:
    sizes = sorted(int(size) for size in counts)
    if not sizes:
        return "—"
    return str(sizes[0]) if sizes[0] == sizes[-1] else f"{sizes[0]}–{sizes[-1]}"


def describe(r: dict[str, Any]) -> str:
    """A few readable lines about one run."""
    p, ia, late = r["pacing"], r["interarrival"], r["generator_send_lateness"]
    inb, out = r["inbound"], r["outbound"]
    lines = [
        f"calls {r['calls']}, {r['codec']['label']}: service CPU {r['service_cpu_pct']} % "
        f"(idle {r['service_idle_cpu_pct']} %), {r['cpu_us_per_call_s']:.0f} µs/call/s; "
        f"RSS {r['rss_mb']} MB (idle {r['rss_idle_mb']} MB, {r['rss_kb_per_call']:.0f} kB/call)",
        f"  pacing lateness ({p.get('ticks', 0)} ticks, interpolated in buckets): "
        f"p50 {p.get('p50_ms', 0):.2f} ms, p99 {p.get('p99_ms', 0):.2f} ms, "
        f"max ≤ {p.get('max_bucket_ms', 0):g} ms, mean {p.get('mean_ms', 0):.3f} ms",
        f"  prompt inter-arrival (kernel timestamps, {ia.get('count', 0)} gaps): "
        f"p50 {ia.get('p50_us', 0) / 1000:.2f} ms, p99 {ia.get('p99_us', 0) / 1000:.2f} ms, "
        f"max {ia.get('max_us', 0) / 1000:.2f} ms",
        f"  prompt out: service sent {out['service_sent_total']}, generator got "
        f"{out['received_total']} of {out['expected_total']} (window {out['received_window']}"
        f"/{out['expected_window']}, {out['rate_ratio']:.3f} of real time); "
        f"silent calls {out['calls_silent']}; payload type {out['payload_type']} "
        f"(others: {out['wrong_payload_type'] or 'none'}), first payloads "
        f"{_sizes(out['first_payload_bytes'])} bytes",
        f"  caller in: generator sent {inb['sent_total']}, service got {inb['received_total']} "
        f"(window {inb['received_window']}/{inb['sent_window']}); RFC 3550 lost "
        f"{inb['lost_total']}, dropped {inb['dropped_total'] or 0}",
    ]
    if r["live"]:
        lv = r["live"]
        lines.append(
            f"  RecordAudio: {lv['messages_window']}/{lv['messages_expected_window']} messages "
            f"in window, {lv['audio_ratio_window']:.3f} of the audio, dropped {lv['dropped_total']}"
        )
    rec = r.get("recording", {})
    if rec.get("enabled"):
        stop = rec["stop_ms"]
        lines.append(
            f"  recordings: {rec['started']} started, {rec['stored']} stored "
            f"({rec['recorded_s']} s of audio); StopRecording p50 {stop['p50'] or 0:.0f} ms, "
            f"p99 {stop['p99'] or 0:.0f} ms, max {stop['max'] or 0:.0f} ms"
        )
    gen = ", ".join(f"{k} {v} %" for k, v in r["generator_cpu_pct"].items())
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r["cpu_busy"].items())
    waits = ", ".join(f"{k} {v:.1%}" for k, v in r["runqueue_wait"].items())
    lines.append(
        f"  generator CPU: {gen}; send lateness p99 {late.get('p99_us', 0) / 1000:.2f} ms; "
        f"cores busy: {shares}; runnable but waiting: {waits}"
    )
    lines.append(f"  set-up p50 {r['setup_ms']['p50'] or 0:.1f} ms; ramp {r['ramp_s_actual']} s")
    log = r["service_log"]
    if log["levels"] or log["tracebacks"]:
        lines.append(f"  service log: {log['levels']}, {log['tracebacks']} tracebacks")
        lines += [f"    {line}" for line in log["first_lines"]]
    verdict = "PASS" if r["passed"] else "FAIL: " + "; ".join(r["failures"])
    lines.append(f"  {verdict}" + "".join(f"\n  warning: {w}" for w in r["warnings"]))
    return "\n".join(lines)
