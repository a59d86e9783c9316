#!/usr/bin/env python3
"""ONNX Runtime as a peer: random LinearAttention and CausalConvWithState cases (com.microsoft
domain) run through onnxruntime's CPU execution provider and through `linattn op` on the same
.npy inputs, compared at float32 tolerance (ONNX Runtime computes in float32).

Covers what the ONNX standard's own cases do not: inverse GQA, key sharing, per-key-dim decay,
shared beta, multi-chunk lengths, inputs a rule ignores, both conv activations, kernel widths
1..5, L < k-1, with and without past state and bias, and the channels-last conv layout.

Usage: ort_peer.py PATH_TO_LINATTN [--cases N] [--seed S] [--keep DIR]
Prints one line per case and a final line "N passed, M failed"; exits 1 on any failure.

Note on channels_last: ONNX Runtime (1.31) keeps the conv state sequence-major,
(B, k-1, C), when channels_last = 1; linattn's state is (B, C, k-1) in both layouts, so the
state is transposed between the two here.
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    import onnxruntime as ort
except ImportError as e:  # a missing peer must fail the test, never pass it silently
    print(f"error: cannot import the peer's Python packages ({e}); run scripts/setup.sh "
          "(pip install -r requirements.txt: numpy, onnx, onnxruntime>=1.25.1)")
    sys.exit(1)

ATOL, RTOL = 2e-5, 2e-4
MS = "com.microsoft"


def make_model(op, inputs, attrs, n_outputs=2):
    """A one-node com.microsoft model; `inputs` lists names in operator order ('' = absent)."""
    while inputs and inputs[-1] == "":
        inputs = inputs[:-1]
    node = helper.make_node(op, inputs, ["output", "present_state"], domain=MS, **attrs)
    g_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs if n]
    g_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
             for n in ["output", "present_state"]]
    graph = helper.make_graph([node], "peer", g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid(MS, 1)])
    model.ir_version = 10  # what onnxruntime 1.25+ accepts
    return model


def run_ort(model, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def logsigmoid(x):
    return -np.logaddexp(0, -x)


def l2n(x, d):
    s = x.shape
    y = x.reshape(*s[:-1], s[-1] // d, d)
    y = y / np.sqrt((y * y).sum(-1, keepdims=True) + 1e-6)
    return y.reshape(s).astype(np.float32)


def attention_case(rng, c):
    B, T, hq, nk, hkv, dk, dv = c["B"], c["T"], c["hq"], c["nk"], c["hkv"], c["dk"], c["dv"]
    rule = c["rule"]
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    feeds = {"query": l2n(f(B, T, hq * dk), dk), "key": l2n(f(B, T, nk * dk), dk),
             "value": f(B, T, hkv * dv)}
    names = ["query", "key", "value", "", "", ""]
    if c["past"]:
        feeds["past_state"] = (0.5 * f(B, hkv, dk, dv)).astype(np.float32)
        names[3] = "past_state"
    if rule in ("gated", "gated_delta") or c.get("extra"):
        width = hkv * dk if c["per_key"] else hkv
        feeds["decay"] = logsigmoid(f(B, T, width) + 3).astype(np.float32)
        names[4] = "decay"
    if rule in ("delta", "gated_delta") or c.get("extra"):
        feeds["beta"] = (1 / (1 + np.exp(-f(B, T, 1 if c["shared_beta"] else hkv)))).astype(
            np.float32)
        names[5] = "beta"
    attrs = {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule}
    if c.get("scale"):
        attrs["scale"] = c["scale"]
    if c.get("chunk"):
        attrs["chunk_size"] = c["chunk"]
    args = ["op", "linear-attention", "--q-num-heads", str(hq), "--kv-num-heads", str(hkv),
            "--update-rule", rule]
    if c.get("scale"):
        args += ["--scale", repr(c["scale"])]
    if c.get("chunk"):
        args += ["--chunk-size", str(c["chunk"])]
    flag = {"query": "--query", "key": "--key", "value": "--value", "past_state": "--past-state",
            "decay": "--decay", "beta": "--beta"}
    return make_model("LinearAttention", names, attrs), feeds, args, flag, None


def conv_case(rng, c):
    B, C, L, k, cl = c["B"], c["C"], c["L"], c["k"], c["channels_last"]
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    x = f(B, L, C) if cl else f(B, C, L)
    feeds = {"input": x, "weight": (f(C, 1, k) / np.sqrt(k)).astype(np.float32)}
    names = ["input", "weight", "", ""]
    if c["bias"]:
        feeds["bias"] = (0.1 * f(C)).astype(np.float32)
        names[2] = "bias"
    if c["past"]:
        feeds["past_state"] = f(B, C, k - 1)  # linattn's layout
        names[3] = "past_state"
    attrs = {"activation": c["activation"]}
    if cl:
        attrs["channels_last"] = 1
    args = ["op", "causal-conv", "--activation", c["activation"]]
    if cl:
        args.append("--channels-last")
    flag = {"input": "--input", "weight": "--weight", "bias": "--bias",
            "past_state": "--past-state"}
    # ONNX Runtime's channels-last state is (B, k-1, C).
    state_t = (lambda s: np.ascontiguousarray(s.transpose(0, 2, 1))) if cl else None
    return make_model("CausalConvWithState", names, attrs), feeds, args, flag, state_t


def attention_cases(rng, n):
    fixed = [
        # rule, B, T, hq, nk, hkv, dk, dv, past, per_key, shared_beta
        ("gated_delta", 1, 130, 2, 2, 4, 16, 16, True, False, False),   # inverse GQA, 3 chunks
        ("gated_delta", 2, 65, 4, 4, 8, 8, 16, False, False, False),    # inverse GQA
        ("gated_delta", 1, 70, 4, 2, 4, 16, 8, True, False, False),     # key sharing
        ("gated_delta", 1, 40, 2, 1, 4, 16, 16, True, True, False),     # inverse GQA + sharing
        ("gated_delta", 1, 129, 4, 4, 4, 16, 16, True, True, False),    # per-key decay
        ("gated_delta", 2, 33, 4, 4, 4, 8, 8, False, False, True),      # shared beta
        ("gated", 1, 100, 2, 2, 4, 16, 16, True, True, False),
        ("gated", 1, 64, 4, 4, 4, 16, 16, False, False, False),
        ("delta", 1, 65, 2, 2, 4, 16, 16, True, False, True),
        ("delta", 2, 1, 4, 4, 4, 16, 16, True, False, False),
        ("linear", 1, 77, 2, 2, 4, 16, 16, True, False, False),
        ("linear", 2, 1, 4, 2, 2, 8, 8, False, False, False),           # GQA
        ("gated_delta", 1, 1, 2, 2, 8, 32, 32, True, False, False),     # decode, TP8-like
        ("gated_delta", 1, 200, 8, 4, 4, 8, 8, True, False, False),     # GQA, long
    ]
    cases = []
    for r, B, T, hq, nk, hkv, dk, dv, past, pk, sb in fixed:
        cases.append(dict(rule=r, B=B, T=T, hq=hq, nk=nk, hkv=hkv, dk=dk, dv=dv, past=past,
                          per_key=pk, shared_beta=sb))
    cases.append(dict(cases[10], extra=True))  # decay and beta given to `linear`: ignored
    cases.append(dict(cases[0], scale=0.3, chunk=16))
    rules = ["linear", "gated", "delta", "gated_delta"]
    while len(cases) < n:
        base = int(rng.choice([1, 2, 4]))
        mapping = rng.choice(["mha", "gqa", "inverse", "sharing"])
        hq = nk = hkv = base
        if mapping == "gqa":
            hq = base * 2
        elif mapping == "inverse":
            hkv = base * int(rng.choice([2, 4]))
        elif mapping == "sharing":
            hkv = base * 2
            hq = hkv
        cases.append(dict(rule=str(rng.choice(rules)), B=int(rng.integers(1, 3)),
                          T=int(rng.choice([1, 2, 17, 63, 64, 65, 96, 131])), hq=hq, nk=nk,
                          hkv=hkv, dk=int(rng.choice([4, 8, 16, 32])),
                          dv=int(rng.choice([4, 8, 16, 32])), past=bool(rng.integers(0, 2)),
                          per_key=bool(rng.integers(0, 2)),
                          shared_beta=bool(rng.integers(0, 2))))
    return cases


def conv_cases(rng, n):
    cases = []
    for k in range(1, 6):
        for act in ["none", "silu", "swish"]:
            cases.append(dict(B=int(rng.integers(1, 3)), C=int(rng.choice([3, 8, 24])),
                              L=int(rng.choice([1, 2, 7, 33])), k=k, activation=act,
                              channels_last=bool(rng.integers(0, 2)),
                              bias=bool(rng.integers(0, 2)), past=bool(rng.integers(0, 2))))
    # L < k-1 with and without past state, both layouts.
    for cl in (False, True):
        for past in (False, True):
            cases.append(dict(B=2, C=6, L=2, k=5, activation="silu", channels_last=cl,
                              bias=True, past=past))
    while len(cases) < n:
        cases.append(dict(B=int(rng.integers(1, 3)), C=int(rng.choice([1, 5, 16, 64])),
                          L=int(rng.choice([1, 3, 4, 20])), k=int(rng.integers(1, 6)),
                          activation=str(rng.choice(["none", "silu"])),
                          channels_last=bool(rng.integers(0, 2)),
                          bias=bool(rng.integers(0, 2)), past=bool(rng.integers(0, 2))))
    return cases


def describe(kind, c):
    if kind == "la":
        s = (f"la {c['rule']:<11} B={c['B']} T={c['T']:<3} H_q={c['hq']} n_k={c['nk']} "
             f"H_kv={c['hkv']} d={c['dk']}/{c['dv']}")
        s += " past" if c["past"] else ""
        s += " dkey" if c["per_key"] and c["rule"] in ("gated", "gated_delta") else ""
        s += " beta1" if c["shared_beta"] and c["rule"] in ("delta", "gated_delta") else ""
        s += " ignored-inputs" if c.get("extra") else ""
        s += f" scale={c['scale']} chunk={c['chunk']}" if c.get("scale") else ""
        return s
    return (f"conv B={c['B']} C={c['C']} L={c['L']} k={c['k']} {c['activation']}"
            f"{' channels_last' if c['channels_last'] else ''}{' bias' if c['bias'] else ''}"
            f"{' past' if c['past'] else ''}")


def run_case(linattn, workdir, index, kind, c, rng):
    model, feeds, args, flag, state_t = (attention_case if kind == "la" else conv_case)(rng, c)
    d = os.path.join(workdir, f"case{index:03d}")
    os.makedirs(d, exist_ok=True)
    cmd = [linattn] + args + ["--out", d, "--threads", "1"]
    for name, arr in feeds.items():
        p = os.path.join(d, name + ".npy")
        np.save(p, arr)
        cmd += [flag[name], p]
    ort_feeds = dict(feeds)
    if state_t is not None and "past_state" in ort_feeds:
        ort_feeds["past_state"] = state_t(ort_feeds["past_state"])
    want_out, want_state = run_ort(model, ort_feeds)
    if state_t is not None:
        want_state = state_t(want_state)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"linattn exited {proc.returncode}: {proc.stderr.strip()}"
    got_out = np.load(os.path.join(d, "output.npy"))
    got_state = np.load(os.path.join(d, "present_state.npy"))
    msgs, ok = [], True
    for what, got, want in (("output", got_out, want_out), ("state", got_state, want_state)):
        if got.shape != want.shape:
            return False, f"{what} shape {got.shape}, ONNX Runtime {want.shape}"
        err = float(np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want)))) if got.size else 0.0
        ok = ok and np.isfinite(err) and err <= 1.0
        msgs.append(f"{what} max|diff| {float(np.max(np.abs(got - want))) if got.size else 0.0:.2e}")
    return ok, ", ".join(msgs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("linattn", help="path to the linattn program")
    ap.add_argument("--cases", type=int, default=64, help="total cases (>= 50 recommended)")
    ap.add_argument("--seed", type=int, default=20251)
    ap.add_argument("--keep", help="write the cases' files here and keep them")
    a = ap.parse_args()
    if not os.access(a.linattn, os.X_OK):
        print(f"error: {a.linattn} is not an executable linattn program")
        return 1
    print(f"peer: onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    rng = np.random.default_rng(a.seed)
    n_la = max(1, a.cases * 5 // 8)
    cases = [("la", c) for c in attention_cases(rng, n_la)]
    cases += [("conv", c) for c in conv_cases(rng, a.cases - len(cases))]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="linattn_peer_") as tmp:
        workdir = a.keep or tmp
        for i, (kind, c) in enumerate(cases):
            try:
                ok, msg = run_case(a.linattn, workdir, i, kind, c, rng)
            except Exception as e:  # an ONNX Runtime rejection is a failed case, not a crash
                ok, msg = False, f"{type(e).__name__}: {e}"
            print(f"{'PASS' if ok else 'FAIL'}  {describe(kind, c):<72} {msg}", flush=True)
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
