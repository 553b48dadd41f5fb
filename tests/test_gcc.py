"""GCC memory: the EMA rule exactly, the MSE rule only through its loss, state in checkpoints."""

from __future__ import annotations

import pytest
import torch

from ssltm.constants import IGNORE_INDEX
from ssltm.models.gcc import GlobalCategoryContext


def known_memory(update: str) -> GlobalCategoryContext:
    gcc = GlobalCategoryContext(num_classes=2, channels=2, k=2, update=update, momentum=0.9)
    with torch.no_grad():
        gcc.prototypes.copy_(torch.tensor([[[0.0, 0.0], [10.0, 10.0]], [[5.0, 0.0], [0.0, 5.0]]]))
    gcc.initialized.fill_(True)
    return gcc


def features_and_labels():
    # 4 pixels (B=1, 2x2): features and classes chosen so that the nearest prototypes are known
    feats = torch.tensor([[1.0, 1.0], [9.0, 9.0], [3.0, 0.0], [2.0, 2.0]])  # N C
    labels = torch.tensor([0, 0, 1, IGNORE_INDEX])
    return feats.T.reshape(1, 2, 2, 2), labels.reshape(1, 2, 2)


def test_ema_moves_prototypes_exactly_by_the_ema_formula():
    gcc = known_memory("ema")
    before = gcc.prototypes.clone()
    features, labels = features_and_labels()
    loss = gcc.update(features, labels)
    assert loss.item() == 0.0
    expected = before.clone()
    # pixel (1,1) -> class 0 slot 0; (9,9) -> class 0 slot 1; (3,0) -> class 1 slot 0 (nearest
    # of (5,0) and (0,5)); the ignored pixel updates nothing, class 1 slot 1 gets no pixel
    expected[0, 0] = 0.9 * before[0, 0] + 0.1 * torch.tensor([1.0, 1.0])
    expected[0, 1] = 0.9 * before[0, 1] + 0.1 * torch.tensor([9.0, 9.0])
    expected[1, 0] = 0.9 * before[1, 0] + 0.1 * torch.tensor([3.0, 0.0])
    assert torch.allclose(gcc.prototypes, expected, atol=1e-6)
    assert not gcc.prototypes.requires_grad


@pytest.mark.parametrize("update", ["mse", "ema"])
def test_reading_the_memory_gives_the_prototypes_no_gradient(update):
    """The segmentation loss trains the attention that reads the memory, never the memory: under
    both rules the prototypes move only by their update rule (docs/model.md, GCC)."""
    torch.manual_seed(0)
    gcc = GlobalCategoryContext(num_classes=3, channels=8, k=2, update=update)
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    gcc.read(x).square().sum().backward()
    assert gcc.prototypes.grad is None
    assert x.grad is not None and gcc.attention.key[0].weight.grad.abs().sum() > 0


def test_mse_moves_prototypes_only_through_its_loss():
    gcc = known_memory("mse")
    before = gcc.prototypes.detach().clone()
    features, labels = features_and_labels()
    context, loss = gcc(features, labels)
    context.square().sum().backward(retain_graph=True)  # the read's gradient reaches no prototype
    assert gcc.prototypes.grad is None
    assert torch.equal(gcc.prototypes.detach(), before)  # the update itself changes nothing
    # mean over the 3 seen prototypes x 2 channels of (p - mean)^2
    targets = torch.tensor([[1.0, 1.0], [9.0, 9.0], [3.0, 0.0]])
    seen = before.view(-1, 2)[:3]
    assert loss.item() == pytest.approx(((seen - targets) ** 2).mean().item())
    loss.backward()
    grad = gcc.prototypes.grad.view(-1, 2)
    assert torch.allclose(grad[:3], 2 * (seen - targets) / 6)
    assert grad[3].abs().max() == 0
    torch.optim.SGD([gcc.prototypes], lr=1.0).step()
    assert not torch.equal(gcc.prototypes.detach(), before)


def test_a_class_seen_for_the_first_time_starts_at_its_own_pixels():
    torch.manual_seed(0)
    gcc = GlobalCategoryContext(num_classes=3, channels=2, k=2, update="ema", momentum=0.0)
    features, labels = features_and_labels()
    gcc.update(features, labels)
    assert gcc.initialized.tolist() == [True, True, False]
    class0 = {tuple(p) for p in [[1.0, 1.0], [9.0, 9.0]]}
    assert all(tuple(p.tolist()) in class0 for p in gcc.prototypes[0])


def few_pixels_of_one_class(values: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """B=1, C=1, 1 x n pixels of class 0 with the given feature values."""
    return torch.tensor(values).view(1, 1, 1, -1), torch.zeros(1, 1, len(values), dtype=torch.long)


def test_new_class_starts_at_distinct_pixels_and_every_slot_gets_pixels():
    # 3 distinct values among 6 pixels, K = 3: each value becomes one prototype (no two slots
    # alike, whatever the seed), so the nearest-prototype assignment gives every slot its pixels
    for seed in range(20):
        gcc = GlobalCategoryContext(num_classes=1, channels=1, k=3, update="ema", seed=seed)
        features, labels = few_pixels_of_one_class([4.0, 4.0, 4.0, 4.0, 7.0, 9.0])
        gcc._initialise_new_classes(features.flatten()[:, None], labels.flatten())
        assert sorted(gcc.prototypes[0, :, 0].tolist()) == [4.0, 7.0, 9.0]
        _, counts = gcc.statistics(features, labels)
        assert sorted(counts.tolist()) == [1.0, 1.0, 4.0]


def test_new_class_with_fewer_distinct_pixels_than_k_uses_each_before_repeating():
    gcc = GlobalCategoryContext(num_classes=1, channels=1, k=3, update="ema")
    features, labels = few_pixels_of_one_class([2.0, 2.0, 5.0])
    gcc._initialise_new_classes(features.flatten()[:, None], labels.flatten())
    assert set(gcc.prototypes[0, :, 0].tolist()) == {2.0, 5.0}


def test_new_class_picks_follow_the_run_seed():
    values = [float(v) for v in range(50)]
    picks = {}
    for seed in (0, 0, 1):
        gcc = GlobalCategoryContext(num_classes=1, channels=1, k=3, update="ema", seed=seed)
        features, labels = few_pixels_of_one_class(values)
        gcc._initialise_new_classes(features.flatten()[:, None], labels.flatten())
        picks.setdefault(seed, []).append(gcc.prototypes[0, :, 0].tolist())
    assert picks[0][0] == picks[0][1]  # same seed, same picks
    assert picks[0][0] != picks[1][0]  # another seed, other picks (fixed values: 3 of 50)


@pytest.mark.parametrize("update", ["mse", "ema"])
def test_first_update_of_a_class_gives_the_same_gradient_as_a_recomputed_forward(update):
    """The step that first sees a class writes its prototypes: the forward pass and its backward
    pass must both use the written values (before the fix, backward saw the new prototypes and
    forward the old ones)."""
    torch.manual_seed(0)
    gcc = GlobalCategoryContext(num_classes=2, channels=4, k=2, update=update, momentum=0.0)
    x = torch.randn(1, 4, 3, 3)
    labels = torch.tensor([[0, 0, 1], [1, 0, 1], [0, 1, 0]])[None]

    def key_gradient() -> torch.Tensor:
        gcc.zero_grad()
        context, loss = gcc(x, labels)
        (context.square().sum() + loss).backward()
        return gcc.attention.key[0].weight.grad.clone()

    first = key_gradient()  # initialises both classes
    assert gcc.initialized.all()
    if update == "ema":  # momentum 0: a second update would move the memory to this batch's means
        gcc.momentum = 1.0 - 1e-12
    again = key_gradient()  # the same memory, nothing written in place during the step
    assert torch.allclose(first, again, atol=1e-6)


def test_reading_the_memory_is_attention_over_all_prototypes():
    """read(x) equals the context attention computed by hand: softmax(q k^T / sqrt(d)) v over the
    num_classes x K prototypes, every pixel for itself."""
    torch.manual_seed(0)
    gcc = GlobalCategoryContext(num_classes=3, channels=8, k=2, update="ema").eval()
    x = torch.randn(2, 8, 3, 4)
    attention = gcc.attention
    memory = gcc.prototypes.flatten(0, 1)  # M C
    q = attention.query(x).flatten(2).transpose(1, 2)  # B HW Ck
    k, v = attention.key(memory), attention.value(memory)  # M Ck
    weights = (q @ k.T / k.shape[-1] ** 0.5).softmax(-1)  # B HW M
    expected = attention.out((weights @ v).transpose(1, 2).reshape(2, -1, 3, 4))
    assert torch.allclose(gcc.read(x), expected, atol=1e-5)
    # and it depends on the memory: other prototypes, another context
    with torch.no_grad():
        gcc.prototypes.add_(1.0)
    assert not torch.allclose(gcc.read(x), expected, atol=1e-3)


@pytest.mark.parametrize("update", ["mse", "ema"])
def test_gcc_state_survives_a_checkpoint_round_trip(update, tmp_path):
    gcc = known_memory(update)
    features, labels = features_and_labels()
    gcc.update(features, labels)
    torch.save(gcc.state_dict(), tmp_path / "gcc.pt")
    fresh = GlobalCategoryContext(num_classes=2, channels=2, k=2, update=update, momentum=0.9)
    fresh.load_state_dict(torch.load(tmp_path / "gcc.pt"))
    assert torch.equal(fresh.prototypes, gcc.prototypes) and torch.equal(fresh.initialized, gcc.initialized)
    assert "prototypes" in gcc.state_dict() and "initialized" in gcc.state_dict()


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(k=0), "gcc.k"), (dict(update="kmeans"), "gcc.update"), (dict(momentum=1.0), "gcc.momentum"),
])
def test_bad_gcc_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlobalCategoryContext(num_classes=2, channels=4, **kwargs)
