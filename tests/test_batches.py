"""Device batching: every image once per epoch, seeded order and flips, eval batches untouched."""

import torch

from vaelib.data.batches import device_batches, map_batches


def _images(n: int = 10) -> torch.Tensor:
    # Image i is constant i on its left half and 255 - i on its right half: identity and flip are both readable.
    x = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    for i in range(n):
        x[i, :, :, :2], x[i, :, :, 2:] = i, 255 - i
    return x


def _epoch(images, seed, train=True, batch_size=4):
    return list(device_batches(images, batch_size, torch.Generator().manual_seed(seed), train=train))


def test_training_epoch_visits_every_image_once_with_flips():
    batches = _epoch(_images(), seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    x = torch.cat(batches) * 255
    left, right = x[:, 0, 0, 0].round().long(), x[:, 0, 0, 3].round().long()
    flipped = left > right  # an unflipped image has i on the left, 255 - i >= i on the right
    ids = torch.where(flipped, right, left)
    assert sorted(ids.tolist()) == list(range(10))
    assert ids.tolist() != list(range(10)), "training batches should be shuffled"
    assert 0 < int(flipped.sum()) < 10, "about half the images should be mirrored"


def test_training_batches_are_a_function_of_the_seed():
    images = _images()
    same = zip(_epoch(images, seed=3), _epoch(images, seed=3), strict=True)
    assert all(torch.equal(a, b) for a, b in same)
    assert not all(torch.equal(a, b) for a, b in zip(_epoch(images, seed=3), _epoch(images, seed=4), strict=True))


def test_evaluation_batches_are_in_order_and_unflipped():
    images = _images()
    x = torch.cat(_epoch(images, seed=0, train=False))
    assert torch.equal(x, images.float() / 255)


def test_batched_inference_lifts_half_precision_to_float32_and_keeps_other_dtypes():
    images = _images()
    halves, pixels, sums = map_batches(lambda x: (x.bfloat16(), (x * 255).round().to(torch.uint8), x.double()),
                                       images, 3, "cpu")
    assert (halves.dtype, pixels.dtype, sums.dtype) == (torch.float32, torch.uint8, torch.float64)
    assert torch.equal(pixels, images) and torch.equal(sums, (images.float() / 255).double())
