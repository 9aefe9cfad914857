"""Batches made ahead by threads: the same batches in the same order as the sampler alone
(whatever the number of threads), a checkpointable state as if nothing were made ahead,
errors raised in the training thread."""

import pytest
import torch
from tiny_options import TINY

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.pairs import prepare_pairs
from napari_pix2pix.engine.prefetch import Prefetcher
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.engine.split import split_train_val
from napari_pix2pix.workflows.training_data import make_sampler


def _sampler(seed=3):
    source, target = make_pair((96, 96), seed=0)
    pairs, *_ = prepare_pairs([(source, "YX")], [(target, "YX")], None, None, 2)
    split = split_train_val(pairs, 0.0)
    config = Pix2PixConfig(
        **{k: v for k, v in TINY.items() if k != "device"},
        seed=seed,
        source_low=[float(source.min())],
        source_high=[float(source.max())],
        target_low=[float(target.min())],
        target_high=[float(target.max())],
    )
    return make_sampler(split, config, 0), config.batch_size


@pytest.mark.parametrize("workers", [1, 3])
def test_the_same_batches_in_order_and_a_state_that_resumes_exactly(workers):
    alone, n = _sampler()
    ahead = Prefetcher(_sampler()[0], n, workers=workers)
    try:
        for _ in range(3):
            for a, b in zip(alone.batch(n), ahead.batch(n)):
                assert torch.equal(a, b)
        # the state after three batches handed out, although more were made
        assert ahead.state() == alone.state()
        resumed, _ = _sampler(seed=99)  # another seed: the state alone must carry it
        again = Prefetcher(resumed, n, workers=workers)
        again.set_state(ahead.state())
        for a, b in zip(alone.batch(n), again.batch(n)):
            assert torch.equal(a, b)
        again.close()
    finally:
        ahead.close()
    assert ahead._pool._shutdown and not any(t.is_alive() for t in ahead._pool._threads)


def test_batches_are_keyed_by_seed_and_number_not_by_who_makes_them():
    sampler, n = _sampler()
    first = [sampler.batch(n) for _ in range(3)]
    assert not torch.equal(first[0][0], first[1][0])  # a stream, not one batch again
    for index in (2, 0, 1):  # any order, any thread, another sampler of the same seed
        for a, b in zip(first[index], _sampler()[0].batch_at(index, n)):
            assert torch.equal(a, b)
    other_rank = _sampler(seed=4)[0]  # make_sampler's other ranks: their own seed
    other_rank.set_state({"batch": 1})  # a rank > 0 resuming: rank 0's position only
    assert other_rank.state() == {"seed": 4, "batch": 1}
    assert not torch.equal(other_rank.batch(n)[0], first[1][0])


def test_an_error_making_a_batch_reaches_the_training_thread():
    sampler, n = _sampler()

    def broken(index, batch_size):
        raise OSError("the file went away")

    sampler.batch_at = broken
    feed = Prefetcher(sampler, n)
    with pytest.raises(OSError, match="went away"):
        feed.batch(n)
    feed.close()
    with pytest.raises(ValueError):
        Prefetcher(sampler, n).batch(n + 1)
