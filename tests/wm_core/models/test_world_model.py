import pytest
import torch

from wm_core.config import ConfigError
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.losses import (
    covariance_loss,
    effective_rank,
    ema_update,
    offdiag_cov_mass,
    variance_loss,
    vicreg_loss,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WorldModel(ModelConfig()).eval()


def test_verbs_shapes_and_rollout_is_repeated_predict(model):
    cfg = model.cfg
    img = torch.rand(2, 3, cfg.image_size, cfg.image_size)
    z = model.encode(img)
    assert z.shape == (2, cfg.grid**2, cfg.latent_dim)
    p = torch.randn(2, 10)
    acts = torch.rand(2, 5, 4) * 2 - 1
    with torch.no_grad():
        zs, ps = model.rollout(z, p, acts)
        assert zs.shape == (2, 5, cfg.grid**2, cfg.latent_dim) and ps.shape == (2, 5, 10)
        z1, p1 = model.predict(z, p, acts[:, 0])
        z2, p2 = model.predict(z1, p1, acts[:, 1])
    torch.testing.assert_close(zs[:, 1], z2)
    torch.testing.assert_close(ps[:, 1], p2)


def test_actions_change_the_prediction(model):
    z = model.encode(torch.rand(1, 3, 128, 128))
    p = torch.zeros(1, 10)
    with torch.no_grad():
        a, _ = model.predict(z, p, torch.tensor([[1.0, 0, 0, -1]]))
        b, _ = model.predict(z, p, torch.tensor([[-1.0, 0, 0, -1]]))
    assert (a - b).abs().max() > 1e-4


def test_wrong_image_shape_is_rejected_naming_both_shapes(model):
    with pytest.raises(ConfigError, match=r"\[B, 3, 128, 128\], got \[1, 3, 64, 64\]"):
        model.encode(torch.rand(1, 3, 64, 64))
    with pytest.raises(ConfigError, match="got \\[1, 4, 128, 128\\]"):
        model.encode(torch.rand(1, 4, 128, 128))


def test_config_validation():
    with pytest.raises(ConfigError, match="collapse='none' must be 'vicreg' or 'ema'"):
        ModelConfig(collapse="none")
    with pytest.raises(ConfigError, match="divisible"):
        ModelConfig(image_size=100)
    assert WorldModel(ModelConfig(collapse="ema")).target_encoder is not None


def test_vicreg_terms_detect_collapse():
    torch.manual_seed(0)
    healthy = torch.randn(512, 16)
    collapsed = torch.ones(512, 1) @ torch.randn(1, 16) + 1e-3 * torch.randn(512, 16)
    assert variance_loss(healthy) < 0.1 < variance_loss(collapsed)
    correlated = torch.randn(512, 1).repeat(1, 16)
    assert covariance_loss(correlated) > 10 * covariance_loss(healthy)
    loss, parts = vicreg_loss(healthy, healthy + 0.01 * torch.randn(512, 16))
    assert parts["invariance"] < 1e-3 and loss.item() > 0


def test_effective_rank_and_offdiag_mass():
    torch.manual_seed(0)
    iso = torch.randn(4000, 32)
    assert effective_rank(iso) > 30
    rank1 = torch.randn(4000, 1) @ torch.randn(1, 32)
    assert effective_rank(rank1) < 1.5
    assert offdiag_cov_mass(iso) < 0.05 and offdiag_cov_mass(rank1) > 0.99


def test_ema_update():
    a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.9)
    torch.testing.assert_close(a.weight, 0.9 * before + 0.1 * b.weight.detach())
