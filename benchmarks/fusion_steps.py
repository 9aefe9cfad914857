"""What each step of the CPU's inference copy (engine/fusion.py, engine/onednn.py) buys:
the generator's forward on one batch of tiles, best of N interleaved rounds, for

  trained network as it is -> channels_last -> + BatchNorm folded -> + oneDNN weights
  prepacked, activations fused -> + the one-channel transposed convolution as phases
  (the copy predict uses), and torch.compile (inductor, freezing) for comparison,

with the largest difference from the trained network's output.

    python benchmarks/fusion_steps.py [--repeats 6] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from predict import MODELS

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine import onednn
from napari_pix2pix.engine.fusion import inference_copy
from napari_pix2pix.io.model_file import Pix2PixModel


def variants(g: torch.nn.Module, shape: tuple[int, ...], compile_too: bool) -> dict:
    cpu = torch.device("cpu")
    folded = inference_copy(g, cpu, fold=True)
    out = {
        "trained network": g,
        "channels_last": inference_copy(g, cpu, fold=False),
        "+ BatchNorm folded": folded,
        "+ prepacked, fused": onednn.pack(copy.deepcopy(folded), shape, phases=False),
        "+ phases (predict's copy)": inference_copy(g, cpu, batch_shape=shape),
    }
    if compile_too:
        import torch._inductor.config as inductor

        inductor.freezing = True
        compiled = torch.compile(copy.deepcopy(g))
        began = time.perf_counter()
        with torch.inference_mode():
            compiled(torch.zeros(shape))
        out[f"torch.compile (compiled in {time.perf_counter() - began:.0f} s)"] = compiled
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (slow)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, batch {args.batch}")
    print("\n| generator | step | ms per batch | speed vs trained network | max abs diff |")
    print("|---|---|---|---|---|")
    for name, options in MODELS.items():
        config = Pix2PixConfig(
            **options, source_low=[0.0], source_high=[1.0], target_low=[0.0], target_high=[1.0]
        )
        g = Pix2PixModel(config).generator.eval()
        for m in g.modules():  # BatchNorm statistics as after training, not the identity
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        shape = (args.batch, 1, *config.patch_size)
        x = torch.rand(shape) * 2 - 1
        last = x.contiguous(memory_format=torch.channels_last)
        nets = variants(g, shape, args.compile)
        best = dict.fromkeys(nets, float("inf"))
        with torch.inference_mode():
            expected = g(x)
            diff = {k: float((f(last) - expected).abs().max()) for k, f in nets.items()}
            for _ in range(args.repeats):
                for k, f in nets.items():
                    began = time.perf_counter()
                    f(x if f is g else last)
                    best[k] = min(best[k], time.perf_counter() - began)
        base = best["trained network"]
        for k in nets:
            print(f"| {name} | {k} | {best[k] * 1e3:.1f} | {base / best[k]:.2f} | {diff[k]:.1e} |")


if __name__ == "__main__":
    main()
