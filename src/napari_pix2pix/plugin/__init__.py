"""The napari side: manifest, reader and writer, sample data, layer helpers and the two
dock widgets. It maps layers to library calls and runs them in thread workers; no
machine-learning logic lives here."""
