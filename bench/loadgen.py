"""Load generator for the media service: N concurrent calls against one service process.

    .venv/bin/python -m bench.loadgen --calls 300 [--record-audio --frame-ms 20|100]
                                      [--duration 20] [--profile /tmp/profile.svg]
    .venv/bin/python -m bench.loadgen --search [--record-audio ...]
    .venv/bin/python -m bench.loadgen --codec g722 --calls 300      # set up by SDP, G.722 both ways

One run: start `sentiric-media serve` pinned to CPU 0 (fresh process, free
loopback ports, a long looping prompt in its assets folder); pin the generator
to CPU 1; fork the RTP process (`bench.rtp_load`) and the gRPC process
(`bench.control`); ramp the calls up; measure over a steady-state window
(service CPU and RSS from /proc, pacing lateness and packet counters from
/metrics, inter-arrival and loss of the prompt packets at the generator,
RecordAudio messages); release everything; stop the service and read its log.
Without `--codec` the calls are PCMU without SDP (as before codecs existed, so
old figures compare); `--codec NAME` (pcmu too) negotiates every call by SDP
and sends the caller's speech in that codec (`bench.codecs`).
Each run appends a JSON line to bench/results/ and prints a markdown row for
docs/PERFORMANCE.md. `--search` steps N up (fresh service each time) and then
bisects to the largest N with pacing p99 ≤ 2 ms and no loss.

This is not a test. On a shared machine the figures are only as good as the
quiet of the two cores; the report says when the generator's core or the
service's core was busy with something else.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import report
from bench.codecs import NAMES, CallCodec, unavailable
from bench.control import run_control_process
from bench.plan import Plan
from bench.rtp_load import open_sockets, pin_to, run_rtp_process
from bench.sampler import Sampler, render_timeline
from bench.service import ServiceProcess, make_prompt, process_memory_kb, scan_log, udp_counters

RESULTS = Path(__file__).resolve().parent / "results"
LEAD_S = 3.0  # from start-up to the first call: warm-up, then the idle baseline
# More for G.722, Opus, G.729: the warm-up encodes the prompt (Opus: ~2 s of the service's core)
ENCODING_LEAD_S = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, help="concurrent calls (not with --search)")
    parser.add_argument("--duration", type=float, default=20.0, help="steady-state window, s")
    parser.add_argument("--ramp", type=float, help="ramp-up time, s (default N/120, 2..5)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="after the ramp, before the window"
    )
    parser.add_argument("--record-audio", action="store_true", help="one RecordAudio per call")
    parser.add_argument(
        "--events", action="store_true", help="one StreamEvents per call (voice activity on)"
    )
    parser.add_argument(
        "--keywords", type=int, default=0, help="of the --events calls, how many spot keywords"
    )
    parser.add_argument(
        "--barge-in", action="store_true", help="interruptible prompts (implies --events)"
    )
    parser.add_argument("--frame-ms", type=int, default=20, help="RecordAudio frame_ms (20..200)")
    parser.add_argument(
        "--recording", action="store_true", help="StartRecording per call (half mono, half stereo)"
    )
    parser.add_argument(
        "--codec",
        choices=NAMES,
        help="negotiate every call by SDP in this codec (default: PCMU, no SDP)",
    )
    parser.add_argument("--sockets", type=int, default=4, help="generator UDP sockets")
    parser.add_argument("--service-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    parser.add_argument("--rtp-base", type=int, default=24000, help="first RTP port of the service")
    parser.add_argument("--live-buffer", type=int, help="LIVE_AUDIO_STREAM_BUFFER of the service")
    parser.add_argument("--profile", help="py-spy the service over the window (.svg, else raw)")
    parser.add_argument("--timeline", action="store_true", help="scrape once a second, show it")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines go here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (service log)")
    search = parser.add_argument_group("search")
    search.add_argument("--search", action="store_true", help="find the largest N that passes")
    search.add_argument("--start", type=int, default=100)
    search.add_argument("--step", type=int, default=100)
    search.add_argument("--max-calls", type=int, default=2000)
    search.add_argument("--resolution", type=int, default=25)
    search.add_argument(
        "--retries", type=int, default=2, help="repeat a failed step this often if disturbed"
    )
    args = parser.parse_args(argv)
    if not args.search and not args.calls:
        parser.error("give --calls N or --search")
    if not (20 <= args.frame_ms <= 200 and args.frame_ms % 20 == 0):
        parser.error("--frame-ms must be 20..200 in steps of 20")
    if args.codec and (reason := unavailable(args.codec)):
        parser.error(f"codec {args.codec} is not available here: {reason}")
    return args


def call_codec(args: argparse.Namespace) -> CallCodec:
    return CallCodec(args.codec, negotiate=True) if args.codec else CallCodec()


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _start_profiler(args: argparse.Namespace, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [str(py_spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--nonblocking", "-o", args.profile]
    if not args.profile.endswith(".svg"):
        command += ["--format", "raw"]
    cpu = args.generator_cpu
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: pin_to(cpu),  # py-spy's sampling costs the generator's core
    )


def run_once(args: argparse.Namespace, calls: int) -> dict[str, Any]:
    """One run against a fresh service; the summarised result (also written as JSON)."""
    pin_to(args.generator_cpu)
    workdir = Path(tempfile.mkdtemp(prefix="sentiric-bench-"))
    ramp = args.ramp if args.ramp is not None else min(5.0, max(2.0, calls / 120))
    codec = call_codec(args)
    lead = LEAD_S + (ENCODING_LEAD_S if codec.codec.stateful else 0.0)
    prompt_s = lead + ramp + args.settle + args.duration + 60
    prompt_uri = make_prompt(workdir / "assets", prompt_s)
    service = ServiceProcess(
        workdir, calls, args.service_cpu, args.rtp_base, live_buffer=args.live_buffer
    )
    ctx = mp.get_context("fork")  # this process has no threads and no gRPC state yet
    children: list[mp.process.BaseProcess] = []
    udp_before = udp_counters()
    try:
        service.start()
        sockets = open_sockets(args.sockets)
        now = time.monotonic()
        t_window_start = now + lead + ramp + args.settle
        plan = Plan(
            run_id=f"bench-{uuid.uuid4().hex[:8]}",
            calls=calls,
            grpc_address=service.grpc_address,
            prompt_uri=prompt_uri,
            targets=tuple(f"127.0.0.1:{s.getsockname()[1]}" for s in sockets),
            t_ramp=now + lead,
            ramp_s=ramp,
            t_window_start=t_window_start,
            t_window_end=t_window_start + args.duration,
            record_audio=args.record_audio,
            frame_ms=args.frame_ms,
            generator_cpu=args.generator_cpu,
            recording=args.recording,
            events=args.events or args.keywords > 0 or args.barge_in,
            keywords=args.keywords,
            barge_in=args.barge_in,
            codec=codec,
        )
        ports, ready, stop = ctx.RawArray("i", calls), ctx.RawValue("i", 0), ctx.Event()
        rtp_results, rtp_child_end = ctx.Pipe(duplex=False)
        events, events_child_end = ctx.Pipe(duplex=False)
        rtp = ctx.Process(
            target=run_rtp_process,
            args=(plan, sockets, ports, ready, stop, rtp_child_end),
            name="bench-rtp",
            daemon=True,
        )
        control = ctx.Process(
            target=run_control_process,
            args=(plan, ports, ready, events_child_end),
            name="bench-control",
            daemon=True,
        )
        for child in (rtp, control):
            child.start()
            children.append(child)
        for sock in sockets:
            sock.close()
        assert rtp.pid is not None
        assert control.pid is not None
        pids = {"rtp": rtp.pid, "control": control.pid, "main": os.getpid()}
        sampler = Sampler(service, pids, plan.t_ramp, args.timeline)

        if not events.poll(plan.t_ramp - time.monotonic() + 10):
            raise RuntimeError("the control process did not finish its warm-up")
        kind, payload = events.recv()
        if kind != "warm":
            raise RuntimeError(f"control process failed before the ramp: {payload}")
        time.sleep(0.5)
        idle_a = sampler.take("baseline")
        _sleep_until(plan.t_ramp - 0.1)
        idle_b = sampler.take("idle_end", metrics=False)
        sampler.wait_until(plan.t_window_start)
        sampler.take("window_start")
        profiler = _start_profiler(args, service.pid, args.duration) if args.profile else None
        sampler.wait_until(plan.t_window_end)
        sampler.take("window_end")
        memory_end = process_memory_kb(service.pid)

        give_up = time.monotonic() + 60 + calls / 20
        while not events.poll(1.0):
            sampler.point()
            if time.monotonic() > give_up:
                raise RuntimeError("the control process did not release the calls")
        kind, control_stats = events.recv()
        time.sleep(0.5)  # the last prompt packets in flight
        stop.set()
        if not rtp_results.poll(30):
            raise RuntimeError("the RTP process did not report")
        rtp_stats = rtp_results.recv()
        if "error" in rtp_stats:
            raise RuntimeError(f"RTP process failed: {rtp_stats['error']}")
        final_metrics = service.scrape()
        profile_note = _finish_profiler(profiler)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc} (service log: {service.log_path})") from None
    finally:
        exit_code = service.stop()
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    udp_after = udp_counters()
    s = sampler.samples
    ws, we = s["window_start"], s["window_end"]
    raw: dict[str, Any] = {
        "machine": report.machine(),
        "calls": calls,
        "ramp_s": ramp,
        "settle_s": args.settle,
        "window_s": we["t"] - ws["t"],
        "record_audio": args.record_audio,
        "events": plan.events,
        "barge_in": plan.barge_in,
        "keywords": plan.keywords,
        "frame_ms": args.frame_ms,
        "recording": args.recording,
        "codec": plan.codec,
        "record_rate": plan.record_rate,
        "service_cpu": args.service_cpu,
        "generator_cpu": args.generator_cpu,
        "service": {
            "cpu_window_s": we["service_cpu"] - ws["service_cpu"],
            "cpu_idle_s": idle_b["service_cpu"] - idle_a["service_cpu"],
            "idle_s": idle_b["t"] - idle_a["t"],
            "rss_idle_kb": idle_b["memory"]["VmRSS"],
            "rss_window_kb": memory_end["VmRSS"],
            "rss_peak_kb": memory_end["VmHWM"],
        },
        "generator_cpu_s": {
            name: we["generator_cpu"][name] - ws["generator_cpu"][name]
            for name in ws["generator_cpu"]
        },
        "runqueue_wait_s": {
            name: we["runqueue_wait"][name] - ws["runqueue_wait"][name]
            for name in ws["runqueue_wait"]
        },
        "cpu_busy": {
            cpu: 1 - (we["cpu_idle"][cpu] - ws["cpu_idle"][cpu]) / (we["t"] - ws["t"])
            for cpu in ws["cpu_idle"]
        },
        "metrics": {
            "baseline": s["baseline"]["metrics"],
            "window_start": ws["metrics"],
            "window_end": we["metrics"],
            "final": final_metrics,
        },
        "udp_drops": {
            key: udp_after.get(key, 0) - udp_before.get(key, 0)
            for key in ("RcvbufErrors", "SndbufErrors", "InErrors")
            if udp_after.get(key, 0) - udp_before.get(key, 0)
        },
        "rtp": rtp_stats,
        "control": control_stats,
        "log": scan_log(service.log_path),
        "exit_code": exit_code,
    }
    result = report.summarise(raw)
    if profile_note:
        result["profile"] = profile_note
    if sampler.timeline is not None:
        result["timeline"] = sampler.timeline
    if args.keep:
        result["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    report.write_jsonl(result, args.results)
    return result


def _finish_profiler(profiler: subprocess.Popen[bytes] | None) -> str:
    if profiler is None:
        return ""
    try:
        _, err = profiler.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        return "py-spy did not finish"
    return f"py-spy exit {profiler.returncode}: {err.decode(errors='replace').strip()[-300:]}"


def search(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Step N up until a run fails, then bisect; each step a fresh service."""
    results: list[dict[str, Any]] = []

    def attempt(calls: int) -> bool:
        for trial in range(args.retries + 1):
            try:
                result = run_once(args, calls)
            except RuntimeError as exc:  # the service died or stopped answering: a failure
                print(f"calls {calls}: run failed: {exc}", flush=True)
                return False
            results.append(result)
            print(report.describe(result), flush=True)
            time.sleep(3)
            if result["passed"] or not result["disturbed"]:
                break
            if trial < args.retries:
                print(f"calls {calls}: failed while disturbed from outside; again", flush=True)
        return bool(result["passed"])

    passed, failed = 0, None
    calls = args.start
    while calls <= args.max_calls:
        if not attempt(calls):
            failed = calls
            break
        passed, calls = calls, calls + args.step
    while failed is not None and failed - passed > args.resolution:
        calls = (passed + failed) // 2 // args.resolution * args.resolution or args.resolution
        if calls <= passed:
            break
        if attempt(calls):
            passed = calls
        else:
            failed = calls
    summary = {
        "search": True,
        "largest_passing_calls": passed,
        "first_failing_calls": failed,
        "record_audio": args.record_audio,
        "events": args.events or args.barge_in or args.keywords > 0,
        "barge_in": args.barge_in,
        "keywords": args.keywords,
        "frame_ms": args.frame_ms if args.record_audio else None,
        "codec": report.codec_of(call_codec(args)),
        "steps": [(r["calls"], r["passed"]) for r in results],
        "machine": report.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    report.write_jsonl(summary, args.results)
    print(json.dumps(summary))
    print(
        f"{summary['codec']['label']}: largest N with pacing p99 ≤ 2 ms and no loss: {passed} "
        f"(first failure: {failed})"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.search:
        results = search(args)
    else:
        results = [run_once(args, args.calls)]
        print(report.describe(results[0]))
        if "timeline" in results[0]:
            print(render_timeline(results[0]["timeline"]))
    print()
    print(report.TABLE_HEADER)
    for result in results:
        print(report.table_row(result))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
