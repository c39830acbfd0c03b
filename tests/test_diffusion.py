"""The shared diffusion blocks against closed forms: Gaussian data have an exact epsilon predictor."""

import pytest
import torch
from torch import nn

from modules.diffusion import EMA, DDPMSchedule, ancestral_sample, ddim_sample, denoise, epsilon_loss, tweedie

MEAN, STD = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])  # data N(MEAN, diag(STD^2))


def exact_eps(schedule: DDPMSchedule):
    """E[eps | x_k] for Gaussian data: (x_k - sqrt(abar) m) sqrt(1 - abar) / (abar s^2 + 1 - abar)."""

    def eps(x_k, k):
        ab = schedule.alpha_bar[k]
        ab = ab.unsqueeze(-1) if torch.is_tensor(k) and k.dim() else ab
        return (x_k - ab.sqrt() * MEAN) * (1 - ab).sqrt() / (ab * STD**2 + 1 - ab)

    return eps


def test_schedule_and_bad_betas():
    s = DDPMSchedule(10, 1e-3, 0.1)
    assert torch.allclose(
        s.alpha_bar, torch.cumprod(1 - torch.linspace(1e-3, 0.1, 10, dtype=torch.float64), 0).float()
    )
    assert s.clean_noise_std(3) == pytest.approx(((1 - s.alpha_bar[3]) / s.alpha_bar[3]).sqrt().item())
    with pytest.raises(ValueError, match="0 < beta_start <= beta_end < 1"):
        DDPMSchedule(10, 0.2, 0.1)


def test_tweedie_and_denoise_are_the_gaussian_posterior_mean():
    s = DDPMSchedule(50, 1e-4, 0.2)
    x, k = torch.randn(100, 2), 7
    ab = s.alpha_bar[k]
    x_k = ab.sqrt() * x
    posterior = MEAN + ab.sqrt() * STD**2 / (ab * STD**2 + 1 - ab) * (x_k - ab.sqrt() * MEAN)
    assert torch.allclose(tweedie(exact_eps(s)(x_k, k), x_k, k, s), posterior, atol=1e-5)
    # clean-scale denoising map: F(x) = m + s^2 / (s^2 + sigma^2) (x - m), its fixed point the mean
    sigma2 = s.clean_noise_std(k) ** 2
    assert torch.allclose(
        denoise(exact_eps(s), x, k, s), MEAN + STD**2 / (STD**2 + sigma2) * (x - MEAN), atol=1e-5
    )
    assert torch.allclose(denoise(exact_eps(s), MEAN[None], k, s), MEAN[None], atol=1e-6)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_samplers_with_the_exact_predictor_recover_the_data_law(sampler):
    s, g = DDPMSchedule(200, 1e-4, 0.1), torch.Generator().manual_seed(0)  # alpha_bar_T ~ 5e-5
    x_T = torch.randn((20000, 2), generator=g)
    if sampler == "ancestral":
        x = ancestral_sample(exact_eps(s), x_T, s, g)
    else:
        x = ddim_sample(exact_eps(s), x_T, s, steps=100)
    assert torch.allclose(x.mean(0), MEAN, atol=0.05)
    assert torch.allclose(x.std(0), STD, rtol=0.05)


def test_epsilon_loss_is_lowest_for_the_exact_predictor():
    s, g = DDPMSchedule(50, 1e-4, 0.2), torch.Generator().manual_seed(1)
    x0 = MEAN + STD * torch.randn((20000, 2), generator=g)
    zero = epsilon_loss(lambda x_k, k: torch.zeros_like(x_k), x0, s, torch.Generator().manual_seed(2))
    exact = epsilon_loss(exact_eps(s), x0, s, torch.Generator().manual_seed(2))
    assert zero.item() == pytest.approx(2.0, rel=0.03)  # E ||eps||^2 = d
    assert exact.item() < 0.5 * zero.item()


def test_ema_follows_the_weights():
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    avg = EMA(net, decay=0.9)  # starts at the current weights
    with torch.no_grad():
        net.weight.fill_(3.0)
    avg.update_parameters(net)
    assert avg.module.weight.item() == pytest.approx(0.9 * 1.0 + 0.1 * 3.0)
    assert not avg.module.weight.requires_grad
    with pytest.raises(ValueError, match=r"EMA decay must be in \[0, 1\)"):
        EMA(net, decay=1.0)
