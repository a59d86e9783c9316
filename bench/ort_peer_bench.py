#!/usr/bin/env python3
"""ONNX Runtime as a timing peer of `linattn bench --device cpu`, in the same run.

Asks the linattn binary for its case list, times ONNX Runtime's CPU execution provider
(com.microsoft LinearAttention and CausalConvWithState, intra_op_num_threads = the same thread
count) on every case it supports (float32 activations and state; the 16-bit cases have no
ONNX Runtime CPU kernel and are reported without a peer), writes the peer times as CSV, then
runs `linattn bench` with --peer so both sets of numbers come from one run on one machine, and
prints the speedup per case.

Usage: ort_peer_bench.py --linattn PATH [--threads N] [--quick] [--case STR ...]
                         [--out DIR] [--time S]
Writes DIR/ort_peer.csv, DIR/cpu_bench.json, DIR/cpu_bench.csv and DIR/cpu_prefill.svg.
Needs numpy, onnx and onnxruntime>=1.25.1 (requirements.txt).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as e:
    print(f"error: cannot import the peer's Python packages ({e}); "
          "pip install -r requirements.txt")
    sys.exit(2)

MS = "com.microsoft"


def make_model(op, inputs, attrs):
    node = helper.make_node(op, inputs, ["output", "present_state"], domain=MS, **attrs)
    g_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs if n]
    g_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
             for n in ["output", "present_state"]]
    graph = helper.make_graph([node], "peer", g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid(MS, 1)])
    model.ir_version = 10
    return model


def l2n(x, d):
    s = x.shape
    y = x.reshape(*s[:-1], s[-1] // d, d)
    y = y / np.sqrt((y * y).sum(-1, keepdims=True) + 1e-6)
    return y.reshape(s).astype(np.float32)


def build(c, rng):
    """The ONNX model and feeds of a case (float32 only), or None when ORT has no kernel."""
    if c["dtype"] != "f32" or c["state_dtype"] != "f32":
        return None
    f = lambda *s: rng.standard_normal(s, dtype=np.float32)
    B = c["B"]
    if c["op"] == "conv":
        C, L, K = c["C"], c["L"], c["K"]
        feeds = {"input": f(B, C, L), "weight": (0.5 * f(C, 1, K)).astype(np.float32),
                 "bias": (0.1 * f(C)).astype(np.float32),
                 "past_state": f(B, C, K - 1)}
        model = make_model("CausalConvWithState", ["input", "weight", "bias", "past_state"],
                           {"activation": c["activation"]})
        return model, feeds
    T, hq, hkv, dk, dv, rule = c["T"], c["Hq"], c["Hkv"], c["dk"], c["dv"], c["rule"]
    feeds = {"query": l2n(f(B, T, hq * dk), dk), "key": l2n(f(B, T, hq * dk), dk),
             "value": f(B, T, hkv * dv),
             "past_state": (0.05 * f(B, hkv, dk, dv)).astype(np.float32)}
    names = ["query", "key", "value", "past_state", "", ""]
    if rule in ("gated", "gated_delta"):
        feeds["decay"] = (-np.logaddexp(0, -(f(B, T, hkv) + 3))).astype(np.float32)
        names[4] = "decay"
    if rule in ("delta", "gated_delta"):
        feeds["beta"] = (1 / (1 + np.exp(-f(B, T, hkv)))).astype(np.float32)
        names[5] = "beta"
    while names[-1] == "":
        names.pop()
    model = make_model("LinearAttention", names,
                       {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule})
    return model, feeds


def time_ort(model, feeds, threads, target_s):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    sess.run(None, feeds)  # warm-up
    warm = time.perf_counter() - t0
    reps = int(min(200, max(3, target_s / max(warm, 1e-6))))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--linattn", required=True, help="path to the linattn binary")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case", action="append", default=[])
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--time", type=float, default=0.6, help="timed seconds per case")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="linattn_bench_")
    os.makedirs(out, exist_ok=True)

    sel = (["--quick"] if a.quick else []) + sum((["--case", c] for c in a.case), [])
    cases_json = os.path.join(out, "cases.json")
    subprocess.run([a.linattn, "bench", "--device", "cpu", "--list", "--json", cases_json] + sel,
                   check=True)
    with open(cases_json) as fh:
        cases = json.load(fh)["cases"]

    print(f"onnxruntime {ort.__version__}, CPU execution provider, "
          f"intra_op_num_threads={a.threads}")
    rng = np.random.default_rng(1)
    peer_csv = os.path.join(out, "ort_peer.csv")
    with open(peer_csv, "w") as fh:
        fh.write("name,median_ms,reps\n")
        for c in cases:
            built = build(c, rng)
            if built is None:
                print(f"  {c['name']:<48} (no ONNX Runtime CPU kernel for these dtypes)")
                continue
            ms, reps = time_ort(*built, a.threads, a.time)
            print(f"  {c['name']:<48} {ms:10.3f} ms  ({reps} runs)", flush=True)
            fh.write(f"{c['name']},{ms},{reps}\n")

    res_json = os.path.join(out, "cpu_bench.json")
    cmd = [a.linattn, "bench", "--device", "cpu", "--threads", str(a.threads), "--peer",
           peer_csv, "--json", res_json, "--csv", os.path.join(out, "cpu_bench.csv"),
           "--plot", os.path.join(out, "cpu_prefill.svg"), "--time", str(a.time)] + sel
    print("\n$ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        return rc
    with open(res_json) as fh:
        res = json.load(fh)
    print(f"\nspeedup over ONNX Runtime {ort.__version__} ({a.threads} threads, same run):")
    for c in res["cases"]:
        if "speedup" in c:
            print(f"  {c['name']:<48} linattn {c['median_ms']:10.3f} ms  ORT "
                  f"{c['peer_ms']:10.3f} ms  {c['speedup']:7.1f}x")
    print(f"\nfiles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
