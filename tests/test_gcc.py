"""GCC memory: the EMA rule exactly, the MSE rule only through its loss, state in checkpoints."""

from __future__ import annotations

import pytest
import torch

from ssltm.data.info import IGNORE_INDEX
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


def test_mse_moves_prototypes_only_through_its_loss():
    gcc = known_memory("mse")
    before = gcc.prototypes.detach().clone()
    features, labels = features_and_labels()
    loss = gcc.update(features, labels)
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


def test_reading_the_memory_keeps_the_shape():
    gcc = GlobalCategoryContext(num_classes=4, channels=8, k=3)
    x = torch.randn(2, 8, 5, 6)
    assert gcc.read(x).shape == x.shape


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
