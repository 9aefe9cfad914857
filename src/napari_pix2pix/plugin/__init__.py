"""The napari side: manifest, reader and writer, sample data, layer helpers and the two
dock widgets. It maps layers to library calls and runs them in thread workers; no
machine-learning logic lives here."""

# the plugin and its dock widgets as napari.yaml names them (napari finds them by these)
PLUGIN = "napari-pix2pix"
TRAIN = "pix2pix: Train"
PREDICT = "pix2pix: Predict"
