"""Checks mcunas's .tflite export with the real runtimes (run by ctest, see
tests/CMakeLists.txt; needs scripts/setup-python's .venv-tflite).

For several candidates (A(1,0), A(3,3), A(8,3), A(8,5); every layout; 1- and 3-channel
inputs; uint8 and int8 IO), trained briefly with `mcunas train --limit`, exported with
`mcunas export`:
  * LiteRT and TFLM load the file;
  * on 100 test images, the outputs of TFLM, of LiteRT's reference kernels (BUILTIN_REF)
    each equal our int8 interpreter's byte for byte, with the interpreter in the
    requantization rounding that runtime uses (`mcunas export --rounding`; the file is the
    same), and LiteRT's default kernels (AUTO: XNNPACK) do too within one LSB:
      - TFLM: MultiplyByQuantizedMultiplier with two roundings (Q31
        SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT): --rounding double;
      - LiteRT default (the ai-edge-litert 2.3.0 wheel, built with TFLITE_SINGLE_ROUNDING,
        one rounding of x * M / 2^(31 - shift); XNNPACK follows it): --rounding single;
      - LiteRT BUILTIN_REF: single rounding in FULLY_CONNECTED, double in every other
        kernel: --rounding litert-ref.
    The modes differ by one LSB when the exact value lies within 2^-(31 - right shift) of a
    half: a few values per 100 images, mostly at the FULLY_CONNECTED output where the right
    shift is small;
  * why XNNPACK gets one LSB: it matches the single rounding on nearly every value, but 2 of
    the 1,000 outputs of one model (a85_convbn_syn3_uint8) came out one LSB away in one CI
    run and not in another; XNNPACK picks microkernels by CPU and some requantize in fp32,
    whose rounding can land on the other side of a half. TFLM (the MCU runtime) and LiteRT's
    reference kernels stay exact;
  * TFLM's arena on x86-64 (print_allocations) equals our ram_x86_64_bytes within 1% and
    its planned head equals our ram_x86_64_head_bytes exactly;
  * `mcunas estimate`'s flash_bytes equals the written file's size.
Usage: test_runtimes.py MCUNAS_BINARY WORKDIR
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tflite_micro.python.tflite_micro import runtime

BIN, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
N_TEST = 100


def run(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAILED: mcunas {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def train(data, k, cells, layout, wpath):
    """A short real training. The CPU backend's training plan currently under-sizes the conv
    workspace for some (threads, batch, shape) combinations ('workspace needs N bytes but
    its buffer holds M', a training bug outside the export path, reported to the lead):
    retry with another thread count / batch size when that happens."""
    last = None
    for threads, batch in ((2, 16), (1, 16), (3, 16), (2, 8), (4, 16)):
        r = subprocess.run([BIN, "train", "--data", data, "--k", str(k), "--cells", str(cells),
                            "--layout", layout, "--epochs", "1", "--limit", "1000", "--threads",
                            str(threads), "--batch", str(batch), "--quiet", "--save", wpath],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return
        last = r.stderr
        if "workspace" not in r.stderr:
            break
    raise SystemExit(f"FAILED: training A({k},{cells}) {layout} on {data}:\n{last}")


def tflm_allocations(interp):
    """print_allocations() writes to the C stderr: capture fd 2."""
    rfd, wfd = os.pipe()
    saved = os.dup(2)
    os.dup2(wfd, 2)
    try:
        interp.print_allocations()
    finally:
        os.dup2(saved, 2)
        os.close(wfd)
        os.close(saved)
    text = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        text += chunk
    os.close(rfd)
    text = text.decode()
    vals = {k: int(v) for k, v in re.findall(r"Arena allocation (\w+) (\d+) bytes", text)}
    if "total" not in vals or "head" not in vals:
        raise SystemExit("cannot parse TFLM's allocation report:\n" + text)
    return vals


datasets = {
    "fm": (os.path.join(WORK, "fm.h5"), (28, 28, 1)),
    "syn3": (os.path.join(WORK, "syn3.h5"), (32, 32, 3)),
}
if not os.path.exists(datasets["fm"][0]):
    run("import", "fashion-mnist", "--limit", 2000, "-o", datasets["fm"][0])
if not os.path.exists(datasets["syn3"][0]):
    run("import", "synthetic", "--count", 1000, "--size", "32x32", "--channels", 3,
        "--classes", 4, "--test-count", N_TEST, "-o", datasets["syn3"][0])

candidates = [
    # k, cells, layout, dataset, io
    (1, 0, "nanonas", "fm", "uint8"),
    (1, 0, "convbn", "syn3", "int8"),
    (1, 0, "colabnas", "fm", "uint8"),
    (3, 3, "nanonas", "syn3", "uint8"),
    (3, 3, "colabnas", "fm", "int8"),
    (3, 3, "convbn", "fm", "uint8"),
    (8, 3, "nanonas", "fm", "uint8"),
    (8, 5, "nanonas", "syn3", "uint8"),
    (8, 5, "colabnas", "syn3", "int8"),
    (8, 5, "convbn", "syn3", "uint8"),
]

failures = []
for k, cells, layout, ds, io in candidates:
    data, (h, w, c) = datasets[ds]
    tag = f"a{k}{cells}_{layout}_{ds}_{io}"
    wpath = os.path.join(WORK, tag + ".h5")
    model = os.path.join(WORK, tag + ".tflite")
    fin, fout = os.path.join(WORK, tag + ".in"), os.path.join(WORK, tag + ".out")
    train(data, k, cells, layout, wpath)
    exp = json.loads(run("export", "--weights", wpath, "--data", data, "-o", model, "--io", io,
                         "--test-limit", N_TEST, "--dump-inputs", fin, "--dump-outputs", fout,
                         "--c-array", os.path.join(WORK, tag + "_data.c"), "--threads", 1,
                         "--json"))
    for mode in ("single", "litert-ref"):
        run("export", "--weights", wpath, "--data", data, "-o", model + "." + mode, "--io", io,
            "--test-limit", N_TEST, "--dump-outputs", fout + "." + mode, "--rounding", mode,
            "--threads", 1)
    est = json.loads(run("estimate", "--k", k, "--cells", cells, "--layout", layout,
                         "--input", f"{h}x{w}x{c}", "--classes", 4 if ds == "syn3" else 10,
                         "--io", io, "--target", "stm32f746", "--json"))
    blob = open(model, "rb").read()
    dt = np.uint8 if io == "uint8" else np.int8
    x = np.fromfile(fin, dtype=dt).reshape(-1, h, w, c)
    ours = np.fromfile(fout, dtype=dt).reshape(len(x), -1)
    ours_mode = {m: np.fromfile(fout + "." + m, dtype=dt).reshape(len(x), -1)
                 for m in ("single", "litert-ref")}
    problems_pre = []
    for m in ours_mode:
        if open(model + "." + m, "rb").read() != open(model, "rb").read():
            problems_pre.append(f"--rounding {m} changed the written file")
    problems = problems_pre
    # The C array compiles as C11 with warnings as errors.
    carr = os.path.join(WORK, tag + "_data.c")
    cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", carr, "-o",
                         os.path.join(WORK, tag + "_data.o")], capture_output=True, text=True)
    if cc.returncode != 0:
        problems.append("model_data.c does not compile: " + cc.stderr.strip())
    if est["flash_bytes"] != len(blob) or exp["flash_bytes"] != len(blob):
        problems.append(f"flash: estimate {est['flash_bytes']}, export {exp['flash_bytes']}, "
                        f"file {len(blob)}")
    # LiteRT: reference kernels and default kernels, each bit-exact with its rounding.
    litert = {}
    for rtype, mode, tol in ((OpResolverType.BUILTIN_REF, "litert-ref", 0),
                             (OpResolverType.AUTO, "single", 1)):
        it = Interpreter(model_content=blob, experimental_op_resolver_type=rtype)
        it.allocate_tensors()
        ii, oi = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        outs = []
        for n in range(len(x)):
            it.set_tensor(ii, x[n:n + 1])
            it.invoke()
            outs.append(it.get_tensor(oi).reshape(-1).copy())
        outs = np.array(outs)
        diff = np.abs(outs.astype(int) - ours_mode[mode].astype(int))
        vs_tflm = int(np.abs(outs.astype(int) - ours.astype(int)).max())
        litert[mode] = (int(diff.max()), vs_tflm)
        if diff.max() > tol:
            problems.append(f"LiteRT {rtype.name} ({mode} rounding) differs: "
                            f"{int((diff > 0).sum())} values, max {int(diff.max())} LSB")
    # TFLM.
    tm = runtime.Interpreter.from_bytes(blob, arena_size=4 * 1024 * 1024)
    outs = []
    for n in range(len(x)):
        tm.set_input(x[n:n + 1], 0)
        tm.invoke()
        outs.append(np.asarray(tm.get_output(0)).reshape(-1).copy())
    outs = np.array(outs)
    diff = np.abs(outs.astype(int) - ours.astype(int))
    if diff.max() != 0:
        problems.append(f"TFLM differs: {int((diff > 0).sum())} values, max {int(diff.max())} LSB")
    alloc = tflm_allocations(tm)
    if alloc["head"] != est["ram_x86_64_head_bytes"]:
        problems.append(f"TFLM head {alloc['head']} != ours {est['ram_x86_64_head_bytes']}")
    rel = abs(alloc["total"] - est["ram_x86_64_bytes"]) / alloc["total"]
    if rel > 0.01:
        problems.append(f"TFLM arena {alloc['total']} vs ours {est['ram_x86_64_bytes']} "
                        f"({100 * rel:.2f}% > 1%)")
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    print(f"{tag:32s} flash {len(blob):6d}  TFLM head {alloc['head']:6d} ours "
          f"{est['ram_x86_64_head_bytes']:6d}  TFLM arena {alloc['total']:6d} ours "
          f"{est['ram_x86_64_bytes']:6d} ({100 * rel:.2f}%)  LiteRT ref/default vs TFLM's rounding "
          f"{litert['litert-ref'][1]}/{litert['single'][1]} LSB  acc float {exp['float_test_acc']:.3f} int8 "
          f"{exp['int8_test_acc']:.3f}  {status}", flush=True)
    if problems:
        failures.append(tag)

if failures:
    print(f"{len(failures)} of {len(candidates)} candidates failed: {', '.join(failures)}")
    sys.exit(1)
print(f"all {len(candidates)} candidates agree with LiteRT and TFLM")
