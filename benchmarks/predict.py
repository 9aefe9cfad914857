"""Prediction speed against the bare network and MONAI's sliding_window_inference.

On one 2048x2048 uint16 image and the same generator, in one process:
  (a) the raw generator forward on the same number of tiles, same batch (tiles/s);
  (b) napari_pix2pix.predict, overlap 0.25 (the fused network; and with fuse=False, the
      trained network as it is);
  (c) MONAI sliding_window_inference, same roi, overlap 0.25, gaussian mode, same batch;
in fp32 and with bf16 autocast, plus the PSNR of bf16 against fp32 output.

With --onnx (needs the [onnx] extra), also, fp32: the generator exported with
napari_pix2pix.export_onnx, run by onnxruntime on the same tiles in the same batches as
predict's own network call (TiledPredictor.forward: the fused, packed copy), numpy in
and out for both, with the same number of threads; tiles/s, their ratio and the largest
difference of the outputs (network units).

    python benchmarks/predict.py [--size 2048] [--repeats 1] [--threads N] [--models default]
    python benchmarks/predict.py --onnx --precisions fp32
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.device import autocast
from napari_pix2pix.engine.inference import make_predictor
from napari_pix2pix.engine.tiling import tile_starts
from napari_pix2pix.io.model_file import Pix2PixModel
from napari_pix2pix.run_options import PredictOptions

MODELS = {
    "default (depth 8, ngf 64, tile 256)": dict(depth=8, base_channels=64, patch_size=256),
    "small (depth 5, ngf 16, tile 256)": dict(depth=5, base_channels=16, patch_size=256),
    # what preset="auto" trains for a 20-minute CPU budget (docs/quality.md)
    "auto on a CPU (depth 5, ngf 32, tile 128)": dict(depth=5, base_channels=32, patch_size=128),
}


def interleaved_best(functions: dict, repeats: int) -> dict[str, float]:
    """Best time of each function over ``repeats`` rounds that run them in turn, so that
    the machine's drift (shared cores, clock changes) hits all of them alike."""
    best = {k: float("inf") for k in functions}
    for _ in range(repeats):
        for k, fn in functions.items():
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    span = float(b.max() - b.min()) or 1.0
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(span**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3, help="best of N interleaved rounds")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--precisions",
        default="fp32,bf16",
        help="bf16 is emulated (very slow) on CPUs without native bf16",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", default="", help="only the generators whose name has this")
    parser.add_argument(
        "--onnx", action="store_true", help="also onnxruntime against predict's network (fp32)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    precisions = {"fp32": None, "bf16": torch.bfloat16}
    chosen = [p for p in args.precisions.split(",") if p]
    image = np.random.default_rng(0).integers(0, 65535, (args.size, args.size)).astype(np.uint16)
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"image {args.size}x{args.size} uint16, batch {args.batch}, best of {args.repeats}"
    )
    rows, extra, onnx_rows = [], [], []
    dev = torch.device("cpu")
    for name, options in MODELS.items():
        if args.models not in name:
            continue
        cfg = Pix2PixConfig(
            **options,
            source_low=[0.0],
            source_high=[65535.0],
            target_low=[0.0],
            target_high=[1000.0],
        )
        model = Pix2PixModel(cfg)
        g = model.generator.eval()
        tile = cfg.patch_size[0]
        n_tiles = len(tile_starts(args.size, tile, 0.25)) ** 2
        tiles = torch.rand(n_tiles, 1, tile, tile) * 2 - 1
        x = torch.from_numpy(image.astype(np.float32) / 65535.0 * 2 - 1)[None, None]
        outputs, speeds = {}, {}
        for precision in chosen:
            dtype = precisions[precision]

            def raw():
                with torch.inference_mode(), autocast(dev, dtype):
                    for i in range(0, n_tiles, args.batch):
                        g(tiles[i : i + args.batch])

            def ours(fuse=True):
                result = p2p.predict(
                    model,
                    image,
                    tile_size=tile,
                    overlap=0.25,
                    batch_size=args.batch,
                    device="cpu",
                    amp="off" if dtype is None else "bf16",
                    fuse=fuse,
                )
                outputs[(precision, fuse)] = result
                if fuse:
                    outputs[precision] = result

            def monai():
                with torch.inference_mode(), autocast(dev, dtype):
                    sliding_window_inference(
                        x, (tile, tile), args.batch, g, overlap=0.25, mode="gaussian"
                    )

            with torch.inference_mode(), autocast(dev, dtype):
                g(tiles[: args.batch])  # warm-up
            t = interleaved_best(
                {"raw": raw, "unfused": lambda: ours(False), "ours": ours, "monai": monai},
                args.repeats,
            )
            speeds[precision] = {k: n_tiles / v for k, v in t.items()}
            # the fused network's output against the trained network's, in target units
            span = float(cfg.target_high[0] - cfg.target_low[0])
            diff = np.abs(outputs[(precision, True)] - outputs[(precision, False)]).max() / span
            speeds[precision]["diff"] = float(diff)
            rows.append((name, precision, speeds[precision], args.size**2 / t["ours"] / 1e6))
            print(
                f"  {name} {precision}: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()),
                flush=True,
            )
        if args.onnx:
            onnx_rows.append((name, *onnx_against_ours(model, tiles.numpy(), args)))
        if "fp32" in speeds and "bf16" in speeds:
            extra.append(
                (
                    name,
                    speeds["bf16"]["ours"] / speeds["fp32"]["monai"],
                    psnr(outputs["bf16"], outputs["fp32"]),
                )
            )
    print()
    print(
        "| generator | precision | raw forward tiles/s (a) | predict, fuse=False tiles/s | "
        "predict tiles/s (b) | MONAI sliding window tiles/s (c) | predict Mpx/s | b/a | "
        "unfused/c | b/c | max diff fused-unfused / target range |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, precision, s, mpx in rows:
        print(
            f"| {name} | {precision} | {s['raw']:.2f} | {s['unfused']:.2f} | {s['ours']:.2f} | "
            f"{s['monai']:.2f} | {mpx:.3f} | {s['ours'] / s['raw']:.2f} | "
            f"{s['unfused'] / s['monai']:.2f} | {s['ours'] / s['monai']:.2f} | {s['diff']:.1e} |"
        )
    if extra:
        print()
        print("| generator | bf16 predict / fp32 MONAI | PSNR bf16 vs fp32 output (dB) |")
        print("|---|---|---|")
        for name, ratio, db in extra:
            print(f"| {name} | {ratio:.2f} | {db:.1f} |")
    if onnx_rows:
        print()
        print(
            "| generator (fp32) | predict's network tiles/s | onnxruntime tiles/s | "
            "onnxruntime / ours | max diff (network units) | export s |"
        )
        print("|---|---|---|---|---|---|")
        for name, ours, ort, diff, seconds in onnx_rows:
            print(
                f"| {name} | {ours:.2f} | {ort:.2f} | {ort / ours:.2f} | {diff:.1e} "
                f"| {seconds:.0f} |"
            )


def onnx_against_ours(model, tiles: np.ndarray, args) -> tuple[float, float, float, float]:
    """(tiles/s of predict's network call, tiles/s of onnxruntime, largest output
    difference, export seconds) on the same tiles in batches of ``args.batch``."""
    import onnxruntime

    predictor = make_predictor(
        model,
        PredictOptions(tile_size=tiles.shape[2:], batch_size=args.batch, device="cpu", amp="off"),
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = p2p.export_onnx(model, Path(folder) / "generator.onnx")
        seconds = time.perf_counter() - start
        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = args.threads
        settings.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), settings, providers=["CPUExecutionProvider"]
        )
    batches = [tiles[i : i + args.batch] for i in range(0, len(tiles), args.batch)]
    outputs = {}

    def ours():
        outputs["ours"] = [predictor.forward(b) for b in batches]

    def ort():
        outputs["ort"] = [session.run(None, {"input": b})[0] for b in batches]

    ours(), ort()  # warm-up (oneDNN packing, onnxruntime's first run)
    t = interleaved_best({"ours": ours, "ort": ort}, args.repeats)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs["ours"], outputs["ort"]))
    print(
        f"  onnx: ours {t['ours']:.1f} s, onnxruntime {t['ort']:.1f} s, diff {diff:.1e}",
        flush=True,
    )
    return len(tiles) / t["ours"], len(tiles) / t["ort"], diff, seconds


if __name__ == "__main__":
    main()
