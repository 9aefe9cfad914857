"""File formats and I/O: images (TIFF with OME/ImageJ metadata), where predictions are
written (streamed TIFF, resumable zarr), the model file and its checkpoints, the
bioimage.io export, and safe writing of all of them. Builds on the engine; never imports
napari."""
