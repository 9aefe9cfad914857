"""Helpers for driving the widgets in tests."""

TINY_FIELDS = dict(
    patch_size=32,
    depth=4,
    base_channels=8,
    batch_size=4,
    disc_layers=2,
    disc_channels=8,
    device="cpu",
    checkpoint_every=None,
)


def set_fields(widget, steps, **extra):
    fields = {**TINY_FIELDS, "gan_mode": "vanilla", **extra, "steps": steps}
    for key, value in fields.items():
        widget.form[key].value = value
