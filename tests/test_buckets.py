"""Length bucketing: every row once per epoch, batches of similar lengths, and text encoders trimming padding."""

from __future__ import annotations

import torch

from lamina.buckets import bucket_order, sequence_lengths
from lamina.inputs.text_encoders import CNNEncoder, TransformerEncoder, trim


def test_bucketed_order_is_a_permutation_whose_batches_have_similar_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=g)
    order = bucket_order(torch.randperm(1000, generator=g), lengths, 32, g, pool=10)
    assert sorted(order.tolist()) == list(range(1000))
    spread = [int(lengths[b].max() - lengths[b].min()) for b in order.split(32)]
    random = [int(lengths[b].max() - lengths[b].min()) for b in torch.randperm(1000, generator=g).split(32)]
    assert sum(spread) * 5 < sum(random)
    assert len(order.split(32)[-1]) == 1000 % 32  # the short batch stays last
    again = bucket_order(torch.randperm(1000, generator=g), lengths, 32, g, pool=10)
    assert not torch.equal(order, again)  # batches change from epoch to epoch


def test_sequence_lengths_count_real_tokens_of_integer_sequences_only():
    batch = {"text": torch.tensor([[5, 6, 0], [7, 0, 0]]), "dense": torch.ones(2, 3),
             "target": torch.tensor([[2, 9, 3], [2, 3, 0]])}
    assert sequence_lengths(batch).tolist() == [5, 3]
    assert sequence_lengths({"dense": torch.ones(2, 3)}) is None


def test_trimming_in_training_does_not_change_a_rows_encoding():
    ids = torch.tensor([[5, 6, 7, 0, 0, 0, 0], [8, 9, 0, 0, 0, 0, 0]])
    assert trim(ids).shape == (2, 3)
    for encoder in (CNNEncoder(20, 8, [3], 4, 0.0), TransformerEncoder(20, 8, 16, 1, 2, 16, "learned", "mean", 0.0)):
        torch.manual_seed(0)
        encoder.train()
        trimmed = encoder(ids)
        encoder.eval()
        assert torch.allclose(trimmed, encoder(ids), atol=1e-5)
