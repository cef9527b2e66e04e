#!/usr/bin/env python3
"""Training throughput of the A(k, c) "nanonas" CNNs in plain eager PyTorch (CPU or CUDA).

The reference point for `mcunas bench`: same network, same optimiser, same
batch sizes and thread counts. Prints one JSON line per configuration.
Installed with mcunas as share/mcunas/torch_throughput.py, where
`mcunas bench --compare-torch` runs it once per configuration.

  python benchmarks/torch_throughput.py --nets 4,3 8,4 --inputs 50x50x3:2 \
      --batches 16 128 --threads 1 2 --seconds 3

Network A(k, c) on HxWxC uint8 images:
  x/255 -> BatchNorm(C) -> conv3x3 same (k, bias) -> ReLU
  c cells: maxpool 2x2/2 -> BatchNorm -> conv3x3 same (n_i, bias) -> ReLU
  global average pool -> dropout 0.5 -> dense(classes) -> softmax cross-entropy
Training step: forward + backward + Adam(lr 1e-3, betas 0.9/0.999, eps 1e-7),
BatchNorm in training mode (Keras momentum 0.99 = PyTorch 0.01, eps 1e-3).
No torch.compile: plain eager mode. channels_last is the default layout: it was
faster than NCHW in all 24 configurations of the grid on the 2-core dev machine.
--device cuda runs on the GPU (the reference for mcunas's cuda backend; TF32 is
switched off, as mcunas keeps float32 there); the step is synchronised before the
clock is read.
"other_load" is how many cores other processes kept busy during the timed steps;
a run with more than ~0.1 competed for the CPU and reads low.
"""
import argparse
import json
import math
import os
import time
import warnings

# torch warns at import that numpy is missing; nothing here uses numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402


def cell_widths(k, cells):
    """n = k, m = 2; per cell i: n = ceil(n*m), m -= 2^-i  (k=8 -> 16,24,30,34)."""
    n, m, out = k, 2.0, []
    for i in range(1, cells + 1):
        n = math.ceil(n * m)
        m -= 2.0 ** -i
        out.append(n)
    return out


def bn(ch):
    return nn.BatchNorm2d(ch, eps=1e-3, momentum=0.01)


class Net(nn.Module):
    def __init__(self, k, cells, in_ch, classes):
        super().__init__()
        layers = [bn(in_ch), nn.Conv2d(in_ch, k, 3, padding=1), nn.ReLU()]
        ch = k
        for n in cell_widths(k, cells):
            layers += [nn.MaxPool2d(2, 2), bn(ch), nn.Conv2d(ch, n, 3, padding=1), nn.ReLU()]
            ch = n
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(ch, classes)

    def forward(self, x_u8_nchw):
        x = self.body(x_u8_nchw.float() / 255.0)
        return self.fc(self.drop(x.mean(dim=(2, 3))))


def make_batches(n, batch, h, w, c, classes, layout, device):
    """Pre-generated random uint8 NHWC images (viewed as NCHW) and labels."""
    out = []
    for _ in range(n):
        x = torch.randint(0, 256, (batch, h, w, c), dtype=torch.uint8).permute(0, 3, 1, 2)
        # An NHWC buffer viewed as NCHW is already channels_last.
        x = x.contiguous(memory_format=layout).to(device)
        out.append((x, torch.randint(0, classes, (batch,)).to(device)))
    return out


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def busy_seconds():
    """CPU seconds all processes on the machine have used so far (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user .. steal
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def bench(k, cells, h, w, c, classes, batch, threads, seconds, warmup, layout, device):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Net(k, cells, c, classes).to(device).to(memory_format=layout).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    data = make_batches(8, batch, h, w, c, classes, layout, device)

    def step(i):
        x, y = data[i % len(data)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    sync(device)
    steps, busy0, cpu0, t0 = 0, busy_seconds(), time.process_time(), time.perf_counter()
    while True:
        step(steps)
        steps += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    # Cores kept busy by other processes meanwhile: a quiet machine reads ~0.
    others = (busy_seconds() - busy0 - (time.process_time() - cpu0)) / elapsed
    return steps, elapsed, max(0.0, others)


def parse_input(s):
    """'50x50x3:2' -> (50, 50, 3, 2); classes default to 10."""
    shape, _, classes = s.partition(":")
    h, w, c = (int(v) for v in shape.split("x"))
    return h, w, c, int(classes or 10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=["4,3", "8,4", "16,4"], help="k,cells pairs")
    ap.add_argument("--inputs", nargs="+", default=["50x50x3:2", "28x28x1:10"], help="HxWxC[:classes]")
    ap.add_argument("--batches", nargs="+", type=int, default=[16, 128])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed steady-state time per configuration")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--layout", choices=["channels_last", "nchw"], default="channels_last",
                    help="memory format of activations and weights (default channels_last)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    a = ap.parse_args()
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    layout = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format

    for net in a.nets:
        k, cells = (int(v) for v in net.split(","))
        for inp in a.inputs:
            h, w, c, classes = parse_input(inp)
            for batch in a.batches:
                for threads in a.threads:
                    steps, el, others = bench(k, cells, h, w, c, classes, batch, threads,
                                      a.seconds, a.warmup, layout, a.device)
                    print(json.dumps({
                        "impl": "pytorch", "k": k, "cells": cells, "input": f"{h}x{w}x{c}",
                        "classes": classes, "batch": batch, "threads": threads,
                        "images_per_second": round(steps * batch / el, 1),
                        "steps": steps, "seconds": round(el, 3),
                        "other_load": round(others, 2),
                        "layout": a.layout, "device": a.device, "torch": torch.__version__,
                    }), flush=True)


if __name__ == "__main__":
    main()
