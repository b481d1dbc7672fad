"""The Transformer captioner's layers: attention against PyTorch's, the causal mask, the positional
encoding against its formula, and incremental decoding against the full forward."""

import math

import pytest
import torch
from torch import nn

from a3cli.engine.errors import A3Error
from a3cli.engine.layers.transformer import (
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoderLayer,
    causal_mask,
    init_weights,
)

N, S, T, E, H = 3, 5, 7, 16, 4


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def rel_error(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def decoder_stack(layers=2, seed=0):
    torch.manual_seed(seed)
    stack = nn.ModuleList(TransformerDecoderLayer(E, H, dim_feedforward=32) for _ in range(layers))
    init_weights(stack)
    for p in stack.parameters():  # wider than N(0, 0.02), so the layers do visibly different things
        p.data.normal_(0, 0.3)
    return stack.double().eval()


def full_forward(stack, tgt, memory):
    mask = causal_mask(tgt.shape[1], tgt.device)
    for layer in stack:
        tgt = layer(tgt, memory, mask)
    return tgt


def step_forward(stack, x, memory, caches):
    caches = caches or [layer.start_cache(memory) for layer in stack]
    out = []
    for i, layer in enumerate(stack):
        x, cache = layer.step(x, caches[i])
        out.append(cache)
    return x, out


@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(masked):
    torch.manual_seed(0)
    ours = MultiHeadAttention(E, H, dropout=0.0).double().eval()
    ref = nn.MultiheadAttention(E, H, dropout=0.0, batch_first=True).double().eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    q, k, v = randn(N, S, E, seed=1), randn(N, T, E, seed=2), randn(N, T, E, seed=3)
    mask = (torch.rand(S, T, generator=torch.Generator().manual_seed(4)) < 0.6) if masked else None
    if mask is not None:
        mask[:, 0] = True  # every query sees at least one key
    expected, _ = ref(q, k, v, attn_mask=None if mask is None else mask == 0, need_weights=False)
    assert rel_error(ours(q, k, v, mask), expected) < 1e-6


def test_attention_keeps_weights_averaged_over_heads():
    attn = MultiHeadAttention(E, H, dropout=0.0).double().eval()
    attn.keep_weights = True
    mask = causal_mask(S)
    x = randn(N, S, E)
    attn(x, x, x, mask)
    assert attn.last_weights is not None and attn.last_weights.shape == (N, S, S)
    torch.testing.assert_close(attn.last_weights.sum(-1), torch.ones(N, S, dtype=torch.float64))
    assert (attn.last_weights[:, ~mask] == 0).all()


def test_width_not_divisible_by_heads_is_a_user_error():
    with pytest.raises(A3Error, match="3.*128"):
        MultiHeadAttention(128, 3)


def test_dropout_acts_on_the_attention_weights():
    torch.manual_seed(0)
    attn = MultiHeadAttention(E, H, dropout=0.5).double()
    x = randn(N, S, E)
    attn.train()
    assert not torch.equal(attn(x, x, x), attn(x, x, x))
    attn.eval()
    assert torch.equal(attn(x, x, x), attn(x, x, x))
    attn.attn_drop.p = 1.0  # every weight dropped: nothing reaches proj but its bias
    attn.train()
    torch.testing.assert_close(attn(x, x, x), attn.proj.bias.expand(N, S, E))


def test_causal_mask_hides_later_words():
    assert torch.equal(causal_mask(3).int(), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
    layer = decoder_stack(layers=1)[0]
    memory, tgt = randn(N, T, E, seed=1), randn(N, S, E, seed=2)
    t = 2
    changed = tgt.clone()
    changed[:, t + 1 :] = randn(N, S - t - 1, E, seed=3)
    mask = causal_mask(S)
    a, b = layer(tgt, memory, mask), layer(changed, memory, mask)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], rtol=0, atol=1e-12)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_positional_encoding_formula():
    pe = PositionalEncoding(E, dropout=0.0, max_len=50)  # a float32 table, computed in float64
    assert pe.pe.shape == (1, 50, E) and pe.pe.dtype == torch.float32
    for i in (0, 1, 7, 49):
        for j in (0, 1, E // 2 - 1):
            angle = i * 10000 ** (-2 * j / E)
            assert pe.pe[0, i, 2 * j].item() == pytest.approx(math.sin(angle), abs=1e-7)
            assert pe.pe[0, i, 2 * j + 1].item() == pytest.approx(math.cos(angle), abs=1e-7)
    x = randn(N, 4, E).float()
    torch.testing.assert_close(pe(x, start=3), x + pe.pe[:, 3:7])
    with pytest.raises(A3Error):
        pe(x, start=47)


def test_incremental_decoding_equals_full_forward():
    stack = decoder_stack(layers=2)
    memory, tgt = randn(N, T, E, seed=1), randn(N, S, E, seed=2)
    expected = full_forward(stack, tgt, memory)
    caches = None
    for t in range(S):
        out, caches = step_forward(stack, tgt[:, t : t + 1], memory, caches)
        torch.testing.assert_close(out, expected[:, t : t + 1], rtol=1e-10, atol=1e-10)
    assert all(c.length == S for c in caches)
    # Several new positions at once take the causal mask within them.
    _, caches = step_forward(stack, tgt[:, :2], memory, None)
    out, _ = step_forward(stack, tgt[:, 2:], memory, caches)
    torch.testing.assert_close(out, expected[:, 2:], rtol=1e-10, atol=1e-10)


def test_selected_cache_rows_continue_their_own_sequences():
    stack = decoder_stack(layers=2)
    memory, tgt = randn(N, T, E, seed=1), randn(N, S, E, seed=2)
    rows = torch.tensor([2, 0, 2])  # beam search: drop row 1, repeat row 2
    expected = full_forward(stack, tgt[rows], memory[rows])
    caches = None
    for t in range(3):
        _, caches = step_forward(stack, tgt[:, t : t + 1], memory, caches)
    caches = [c.select(rows) for c in caches]
    for t in range(3, S):
        out, caches = step_forward(stack, tgt[rows, t : t + 1], memory[rows], caches)
        torch.testing.assert_close(out, expected[:, t : t + 1], rtol=1e-10, atol=1e-10)


def test_init_weights_as_the_captioner():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(1000, 64), TransformerDecoderLayer(64, 4, dim_feedforward=256))
    for p in model.parameters():
        p.data.fill_(5.0)
    init_weights(model)
    layer = model[1]
    assert layer.norm_ffn.weight.eq(1).all() and layer.norm_ffn.bias.eq(0).all()
    assert layer.self_attn.query.bias.eq(0).all() and layer.ffn[0].bias.eq(0).all()
    for weight in (model[0].weight, layer.ffn[0].weight):
        assert weight.mean().abs() < 0.005 and abs(weight.std().item() - 0.02) < 0.002
