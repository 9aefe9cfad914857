"""The engine: networks, losses, crop sampling, the training loop, tiled inference,
metrics, devices and memory, distributed training and the simulated sample. It works on
arrays and torch modules only: it reads and writes no files (that is ``io``) and never
imports napari (that is ``plugin``)."""
