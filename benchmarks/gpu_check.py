"""The GPU acceptance measurements (issue 14), in one process, tables to stdout and to
OUT/gpu_check.md. Run by benchmarks/gpu_check.sh, which also runs the gpu-marked tests;
its header says how to prepare a bare GPU box.

1. training images/s: our step (bf16 autocast) against a reference-equivalent pix2pix
   step (unet_256 + 70x70 PatchGAN, Adam, BCE + 100 L1, fp32), interleaved, batch 1 and
   16, 256 px;
2. prediction tiles/s of ``predict`` against MONAI sliding_window_inference (same
   network, roi and overlap 0.25, gaussian), fp32 and bf16, with the PSNR of bf16 against
   fp32, on a 4096x4096 image and a 64-slice 2048x2048 stack;
3. the GPU's busy share during path -> path prediction of a TIFF stack (NVML sampling);
4. achieved TFLOP/s of prediction against the measured bf16 matmul peak.

    python benchmarks/gpu_check.py [--device cuda] [--small] [--out DIR]

``--device cpu --small`` runs every part at toy sizes on a CPU (the busy share and peak
are then not measured): a check that the script works before a GPU session.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.device import autocast
from napari_pix2pix.engine.networks import build_discriminator, build_generator
from napari_pix2pix.engine.trainer import Trainer
from napari_pix2pix.io.model_file import Pix2PixModel

LINES: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def low_precision(dev: torch.device) -> torch.dtype | None:
    """bf16 on a GPU; on a CPU None (fp32): most CPUs emulate bf16, 20-30x slower, and the
    CPU run only checks that the script works (its 'bf16' rows are then fp32)."""
    return torch.bfloat16 if dev.type == "cuda" else None


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def best_of(functions: dict, repeats: int, dev: torch.device) -> dict[str, float]:
    """Best seconds of each function over interleaved rounds."""
    best = dict.fromkeys(functions, math.inf)
    for _ in range(repeats):
        for k, fn in functions.items():
            sync(dev)
            start = time.perf_counter()
            fn()
            sync(dev)
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def reference_step(cfg: Pix2PixConfig, dev: torch.device):
    """The reference implementation's step, written plainly: D on real and fake pairs
    with BCE, then G with BCE + 100 L1, Adam (2e-4, betas 0.5/0.999), fp32."""
    g, d = build_generator(cfg).to(dev), build_discriminator(cfg).to(dev)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()

    def step(x, y):
        fake = g(x)
        opt_d.zero_grad(set_to_none=True)
        real_logits, fake_logits = d(x, y), d(x, fake.detach())
        loss_d = 0.5 * (
            bce(real_logits, torch.ones_like(real_logits))
            + bce(fake_logits, torch.zeros_like(fake_logits))
        )
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        logits = d(x, fake)
        loss_g = bce(logits, torch.ones_like(logits)) + 100 * (fake - y).abs().mean()
        loss_g.backward()
        opt_g.step()

    return step


def training(dev: torch.device, small: bool, repeats: int) -> None:
    patch, depth = (64, 6) if small else (256, 8)
    say(f"## 1. Training, {patch} px, depth {depth}, ngf 64, 70x70 PatchGAN")
    say()
    low = "bf16" if low_precision(dev) is not None else "fp32"
    say(
        f"| batch | reference fp32 images/s | ours fp32 images/s | ours / reference, both fp32 "
        f"| ours {low} images/s | end to end: ours {low} / reference fp32 |"
    )
    say("|---|---|---|---|---|---|")
    for batch in (1, 2) if small else (1, 16):
        cfg = Pix2PixConfig(patch_size=patch, depth=depth, batch_size=batch)
        torch.manual_seed(0)
        x = torch.rand(batch, 1, patch, patch, device=dev) * 2 - 1
        y = torch.rand(batch, 1, patch, patch, device=dev) * 2 - 1
        ref = reference_step(cfg, dev)
        ours = Trainer(cfg, build_generator(cfg), dev, low_precision(dev))
        ours32 = Trainer(cfg, build_generator(cfg), dev, None)  # equal precision
        steps = 2 if small else 10

        def run_ref():
            for _ in range(steps):
                ref(x, y)

        def runner(trainer):
            def run():
                for _ in range(steps):
                    trainer._update(x, y, cfg.lr, 1.0)

            return run

        runs = {"ref": run_ref, "ours32": runner(ours32), "ours": runner(ours)}
        for run in runs.values():  # warm-up (cuDNN autotuning, allocator)
            run()
        t = best_of(runs, repeats, dev)
        r, o32, o = (batch * steps / t[k] for k in ("ref", "ours32", "ours"))
        say(f"| {batch} | {r:.1f} | {o32:.1f} | {o32 / r:.2f} | {o:.1f} | {o / r:.2f} |")
    say()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    span = float(b.max() - b.min()) or 1.0
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(span**2 / mse)


def _model(tile: int) -> Pix2PixModel:
    cfg = Pix2PixConfig(
        depth=8,
        base_channels=64,
        patch_size=tile,
        source_low=[0.0],
        source_high=[65535.0],
        target_low=[0.0],
        target_high=[1000.0],
    )
    torch.manual_seed(0)
    return Pix2PixModel(cfg)


def prediction(dev: torch.device, small: bool, repeats: int) -> float:
    """Prints the table; returns our bf16 tiles/s on the image (for part 4)."""
    from monai.inferers import sliding_window_inference

    tile, batch = 256, 16
    model = _model(tile)
    g = model.generator.to(dev).eval()
    rng = np.random.default_rng(0)
    cases = {
        "image": ((512, 512) if small else (4096, 4096), "YX"),
        "stack": ((2, 256, 256) if small else (64, 2048, 2048), "ZYX"),
    }
    say("## 2. Prediction: depth 8, ngf 64, 256-px tiles, overlap 0.25, batch 16")
    say()
    say(
        "| input | precision | predict tiles/s | MONAI sliding window tiles/s | "
        "predict / MONAI fp32 | PSNR bf16 vs fp32 (dB) |"
    )
    say("|---|---|---|---|---|---|")
    ours_bf16 = 0.0
    for name, (shape, axes) in cases.items():
        image = rng.integers(0, 65535, shape).astype(np.uint16)
        planes = int(np.prod(shape[:-2]))
        step = int(tile * 0.75)
        per_plane = math.ceil((shape[-2] - tile) / step + 1) * math.ceil(
            (shape[-1] - tile) / step + 1
        )
        tiles = planes * per_plane
        x = torch.from_numpy(image.astype(np.float32) / 65535 * 2 - 1).to(dev)
        x = x.reshape(planes, 1, *shape[-2:])
        out, speed = {}, {}
        for precision, dtype in (("fp32", None), ("bf16", low_precision(dev))):
            amp = "bf16" if dtype is not None else "off"

            def ours(amp=amp, precision=precision):
                out[precision] = p2p.predict(
                    model, image, axes, device=str(dev), batch_size=batch, amp=amp
                )

            def monai(dtype=dtype):
                with torch.inference_mode(), autocast(dev, dtype):
                    for i in range(planes):
                        sliding_window_inference(
                            x[i : i + 1], (tile, tile), batch, g, overlap=0.25, mode="gaussian"
                        )

            ours(), monai()  # warm-up
            t = best_of({"ours": ours, "monai": monai}, repeats, dev)
            speed[precision] = {k: tiles / v for k, v in t.items()}
        for precision in ("fp32", "bf16"):
            s = speed[precision]
            db = psnr(out["bf16"], out["fp32"]) if precision == "bf16" else math.nan
            say(
                f"| {name} {'x'.join(map(str, shape))} | {precision} | {s['ours']:.1f} | "
                f"{s['monai']:.1f} | {s['ours'] / speed['fp32']['monai']:.2f} | {db:.1f} |"
            )
        if name == "image":
            ours_bf16 = speed["bf16"]["ours"]
    say()
    return ours_bf16


def busy_share(dev: torch.device, small: bool) -> None:
    """The GPU's utilisation, sampled by NVML every 20 ms, during path -> path predict."""
    say("## 3. GPU busy during path -> path prediction (TIFF stack in, OME-TIFF out)")
    say()
    if dev.type != "cuda":
        say("not measured: no CUDA device")
        say()
        return
    import pynvml  # nvidia-ml-py

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(dev.index or 0)
    shape = (4, 256, 256) if small else (32, 2048, 2048)
    folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    source = folder / "stack.tif"
    rng = np.random.default_rng(1)
    tifffile.imwrite(
        source, rng.integers(0, 65535, shape).astype(np.uint16), metadata={"axes": "ZYX"}
    )
    model = _model(256)
    samples: list[int] = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            time.sleep(0.02)

    try:  # a TIFF path is read lazily through zarr; the reference box may not have it
        import zarr  # noqa: F401

        image, read = source, "read from the file"
    except ImportError:
        image, read = tifffile.imread(source), "read into memory first (no zarr here)"

    def path_to_path(name: str) -> None:
        p2p.predict(
            model, image, axes="ZYX", device="cuda", amp="bf16", batch_size=16, out=folder / name
        )

    path_to_path("warm.ome.tif")
    sampler = threading.Thread(target=sample)
    start = time.perf_counter()
    sampler.start()
    path_to_path("out.ome.tif")
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    say(f"The stack was {read}; the output streams to an OME-TIFF.")
    say()
    say("| stack | seconds | NVML samples | mean GPU busy | share of samples >= 90 % busy |")
    say("|---|---|---|---|---|")
    busy = np.asarray(samples, float)
    say(
        f"| {'x'.join(map(str, shape))} uint16 | {seconds:.1f} | {len(busy)} | "
        f"{busy.mean():.0f} % | {(busy >= 90).mean():.0%} |"
    )
    say()


def tflops(dev: torch.device, small: bool, tiles_per_s: float) -> None:
    say("## 4. Achieved TFLOP/s of bf16 prediction against the bf16 matmul peak")
    say()
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(256)
    g = model.generator.to(dev).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        g(torch.zeros(1, 1, 256, 256, device=dev))
    per_tile = counter.get_total_flops()
    n = 1024 if small else 8192
    dtype = low_precision(dev) or torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    t = best_of({"mm": lambda: [a @ b for _ in range(10)]}, 3, dev)["mm"]
    peak = 2 * n**3 * 10 / t / 1e12
    achieved = per_tile * tiles_per_s / 1e12
    say("| GFLOP per tile | predict tiles/s | achieved TFLOP/s | matmul peak TFLOP/s | share |")
    say("|---|---|---|---|---|")
    say(
        f"| {per_tile / 1e9:.1f} | {tiles_per_s:.1f} | {achieved:.2f} | {peak:.2f} | "
        f"{achieved / peak:.0%} |"
    )
    say()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="toy sizes (a CPU check)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="gpu_check_output")
    args = parser.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    say(f"# GPU check: {name}, torch {torch.__version__}")
    say()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # each part on its own: one that fails (a missing package on the GPU box, a CUDA
    # error) is reported and the others still run; the tables are written after each
    tiles_per_s, failed = None, []
    parts = [
        ("training", lambda: training(dev, args.small, args.repeats)),
        ("prediction", lambda: prediction(dev, args.small, args.repeats)),
        ("busy share", lambda: busy_share(dev, args.small)),
        ("TFLOP/s", lambda: tflops(dev, args.small, tiles_per_s)),
    ]
    for name, part in parts:
        try:
            result = part()
            if name == "prediction":
                tiles_per_s = result
        except Exception as exc:  # report it and go on to the next part
            failed.append(name)
            say(f"**{name} failed**: {type(exc).__name__}: {exc}")
            say()
        (out / "gpu_check.md").write_text("\n".join(LINES) + "\n")
    if failed:
        sys.exit(f"parts that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
