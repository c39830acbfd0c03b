"""The rectified-flow reward model of Policy-to-Language (Yang et al., arXiv:2502.12530, Sec. 3).

phi(t, z_t | c, y) is a velocity field on decision distributions z in R^{|A|}, trained with the
rectified-flow loss ``modules.flow_matching.cfm_loss`` (straight path, target z_1 - z_0) and
sampled with ``euler_sample``. Three conditionings (``make_velocity``):

* ``attention`` (the paper's): flow tokens phi_Emb([z_t ; PE(t)]) -> m tokens of the LLM width
  cross-attend to the frozen LLM's last-layer hidden states H(c, y) through that layer's own
  W_Q / W_K / W_V (GQA: each KV head serves n_heads / n_kv_heads query heads); phi_Proj maps the
  mean attended token to the velocity. Only phi_Emb and phi_Proj train.
* ``pooled`` (ablation w/o Attn): a ``VelocityMLP`` on the masked mean of H.
* ``minilm`` (ablation MLP-on-MiniLM): a ``VelocityMLP`` on the MiniLM embedding of (c, y).

[reconstruction] the residual (flow token + attention output) before phi_Proj, no RoPE inside the
cross-attention, m = ``flow_tokens``, and the Gaussian source centred on the simplex barycentre,
z_0 ~ N(1/|A|, sigma^2 I), are ours; ``source="proxy"`` starts the flow at a proxy judgment instead
(Theorem 1's reading: the proxy's noise is the forward process's noise), see ``denoise.py``;
``flow_probs(..., owner=)`` draws the source once per explanation (common random numbers, so
r_j = p_hat_j - p_hat_{j-1} is not dominated by sampling noise; ``common_noise=false`` turns it off).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modules.flow_matching import VelocityMLP, euler_sample, time_embedding
from modules.nets import MLP


class CrossAttentionVelocity(nn.Module):
    """v(z, t | H, mask) with frozen (W_Q, W_K, W_V) of an LLM layer of width ``d_model``."""

    def __init__(
        self,
        dim: int,
        W_Q: torch.Tensor,
        W_K: torch.Tensor,
        W_V: torch.Tensor,
        n_heads: int,
        n_kv_heads: int,
        flow_tokens: int = 4,
        hidden: int = 128,
        time_features: int = 16,
    ):
        super().__init__()
        d_model = W_Q.shape[1]
        self.dim, self.m, self.n_heads, self.n_kv_heads = dim, flow_tokens, n_heads, n_kv_heads
        self.time_features = time_features
        self.register_buffer("W_Q", W_Q.detach().clone())  # [n_heads * d_head, d_model]
        self.register_buffer("W_K", W_K.detach().clone())  # [n_kv_heads * d_head, d_model]
        self.register_buffer("W_V", W_V.detach().clone())
        self.emb = MLP(dim + time_features, flow_tokens * d_model, hidden=[hidden], activation=nn.SiLU)
        self.proj = MLP(
            d_model + n_heads * (W_V.shape[0] // n_kv_heads), dim, hidden=[hidden], activation=nn.SiLU
        )

    def forward(
        self, z: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        H, mask = cond  # [B, T, d_model], [B, T] (True = token)
        B, T, _ = H.shape
        t = t.expand(len(z)) if t.ndim == 0 else t
        tokens = self.emb(torch.cat([z, time_embedding(t, self.time_features)], -1)).view(
            B, self.m, -1
        )  # [B, m, d_model]
        d_head = self.W_Q.shape[0] // self.n_heads
        q = (tokens @ self.W_Q.T).view(B, self.m, self.n_heads, d_head).transpose(1, 2)  # [B, h, m, dh]
        k = (H @ self.W_K.T).view(B, T, self.n_kv_heads, d_head).transpose(1, 2)  # [B, kv, T, dh]
        v = (H @ self.W_V.T).view(B, T, self.n_kv_heads, d_head).transpose(1, 2)
        group = self.n_heads // self.n_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # GQA: [B, h, T, dh]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # [B, h, m, dh]
        attended = attended.transpose(1, 2).reshape(B, self.m, -1)  # [B, m, h * dh]
        return self.proj(torch.cat([tokens, attended], -1).mean(1))  # [B, |A|]


def init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every ``nn.Linear`` / ``nn.Embedding`` with PyTorch's default init from ``generator``."""
    for layer in module.modules():
        if isinstance(layer, nn.Embedding):
            nn.init.normal_(layer.weight, generator=generator)
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=5**0.5, generator=generator)
            if layer.bias is not None:
                bound = layer.weight.shape[1] ** -0.5
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return module


class PooledVelocity(nn.Module):
    """Ablation: v(z, t | mean_T H) -- the text reaches the flow only as one pooled vector."""

    def __init__(self, dim: int, d_model: int, hidden: int = 128, layers: int = 3):
        super().__init__()
        self.mlp = VelocityMLP(dim, d_model, hidden, layers)

    def forward(
        self, z: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        H, mask = cond
        pooled = (H * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # [B, d_model]
        return self.mlp(z, t, pooled)


class EmbeddingVelocity(nn.Module):
    """Ablation: v(z, t | e) with e a sentence embedding (MiniLM) of (c, y)."""

    def __init__(self, dim: int, d_embed: int, hidden: int = 128, layers: int = 3):
        super().__init__()
        self.mlp = VelocityMLP(dim, d_embed, hidden, layers)

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.mlp(z, t, cond)


def to_simplex(z: torch.Tensor) -> torch.Tensor:
    """Clip a flow sample to the positive orthant and renormalise: a decision distribution."""
    z = z.clamp_min(1e-6)
    return z / z.sum(-1, keepdim=True)


def repeat_cond(cond, times: int):
    """Repeat a condition (a tensor or an (H, mask) tuple) ``times`` along the batch (sample-major)."""
    if isinstance(cond, tuple):
        return tuple(c.repeat(times, *[1] * (c.ndim - 1)) for c in cond)
    return cond.repeat(times, *[1] * (cond.ndim - 1))


def flow_probs(
    v: nn.Module,
    cond,
    n: int,
    dim: int,
    sigma: float,
    samples: int,
    steps: int,
    generator: torch.Generator,
    owner: np.ndarray | None = None,
) -> torch.Tensor:
    """p_hat [n, dim]: the mean of ``samples`` simplex-projected flow samples from N(1/dim, sigma^2 I).

    ``owner`` [n] (common random numbers): rows with the same owner (the prefixes of one
    explanation) share their source draws, so p_hat_j - p_hat_{j-1} measures the change of the
    condition, not of the sampling noise; without it every row draws its own."""
    groups = n if owner is None else int(owner.max()) + 1
    z0 = 1.0 / dim + sigma * torch.randn(samples, groups, dim, generator=generator)  # [S, groups, dim]
    z0 = (z0 if owner is None else z0[:, torch.as_tensor(owner)]).reshape(samples * n, dim)  # sample-major
    z1 = euler_sample(v, z0, repeat_cond(cond, samples), steps)
    return to_simplex(z1).view(samples, n, dim).mean(0)
