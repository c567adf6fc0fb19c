"""The losses of every training run, each `(loss, logs)` for one batch of float images in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.nn.autoencoders import VAE, ConvAutoencoder
from lib.nn.cnn import CNN
from lib.nn.contrastive import ContrastiveModel


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalized-temperature cross entropy for n positive pairs (z1[i], z2[i]).

    Each of the 2n views must pick its partner among the other 2n - 1 views by
    cosine similarity / temperature; the loss is the mean cross entropy.
    """
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def reconstruction(model: ConvAutoencoder, x: torch.Tensor):
    """Autoencoders: mean squared error per pixel."""
    loss = model.reconstruction_error(x).mean()
    return loss, {"mse": loss.item()}


def negative_elbo(model: VAE, x: torch.Tensor, generator: torch.Generator):
    """VAE: reconstruction negative log-likelihood + beta KL, one sample of z per image, in nats per image."""
    nll, kl = model.elbo_terms(x, generator, 1)
    loss = (nll + model.config.beta * kl).mean()
    return loss, {"nll": nll.mean().item(), "kl": kl.mean().item()}


def contrastive(model: ContrastiveModel, x: torch.Tensor, views):
    """NT-Xent on two views of every image, plus the decoder's squared error on the detached embedding of the
    first `decoder_fraction` of the batch (it learns to draw the embedding without changing it)."""
    z = model.encoder.project(torch.cat([views(x), views(x)]))
    loss = nt_xent(*z.chunk(2), model.config.temperature)
    logs = {"nt_xent": loss.item()}
    if model.decoder is not None:
        m = max(1, int(model.config.decoder_fraction * len(x)))
        recon = model.decoder(F.normalize(z[:m].detach().float(), dim=1))
        mse = (torch.sigmoid(recon.float()) - x[:m].float()).pow(2).mean()
        loss = loss + mse
        logs["decoder_mse"] = mse.item()
    return loss, logs


def cnn(model: CNN, x: torch.Tensor, y: torch.Tensor, label_smoothing: float, reconstruction_weight: float = 0.0):
    """The CNN family: label-smoothed cross entropy of the classifier, plus that of the description's own head
    and `reconstruction_weight` times the decoder's squared error, for the heads the network has. `y`: class
    indices, or class probabilities (soft targets). The decoder draws from the description with the gradient
    stopped, so it never changes the description."""
    return _heads(model, model.outputs(x), x, y, label_smoothing, reconstruction_weight)


def _heads(model: CNN, out: dict, x: torch.Tensor, y: torch.Tensor, label_smoothing: float,
           reconstruction_weight: float):
    loss = classify = F.cross_entropy(out["logits"], y, label_smoothing=label_smoothing)
    if "z" not in out:
        return loss, {}
    describe = F.cross_entropy(model.description_head(out["z"]), y, label_smoothing=label_smoothing)
    logs = {"classifier": classify.item(), "description": describe.item()}
    if not model.config.decoder:
        return classify + describe, logs
    reconstruct = F.mse_loss(model.decode(out["z"].detach()), x)
    logs["reconstruction"] = reconstruct.item()
    return classify + describe + reconstruction_weight * reconstruct, logs


def cnn_fixmatch(model: CNN, x: torch.Tensor, y: torch.Tensor, strong: torch.Tensor, weak_logits: torch.Tensor,
                 confidence: float, label_smoothing: float, reconstruction_weight: float, unlabeled_weight: float):
    """FixMatch on the CNN family: `cnn`'s loss on labeled views x, plus `unlabeled_weight` times `fixmatch`'s
    loss of the classifier and of the description's head on strong views of unlabeled images, against the
    pseudo-labels of their weak views' logits `weak_logits`. One forward pass over labeled and strong views
    together, so batch norm normalises them with the same statistics."""
    n = len(x)
    out = model.outputs(torch.cat([x, strong]))
    loss, logs = _heads(model, {k: v[:n] for k, v in out.items()}, x, y, label_smoothing, reconstruction_weight)
    unlabeled, mask = fixmatch(weak_logits, out["logits"][n:], confidence)
    if "z" in out:
        unlabeled = unlabeled + fixmatch(weak_logits, model.description_head(out["z"][n:]), confidence)[0]
    logs.update(unlabeled=unlabeled.item(), confident_fraction=mask.mean().item())
    return loss + unlabeled_weight * unlabeled, logs


def cnn_contrastive(model: CNN, x: torch.Tensor, views, temperature: float):
    """NT-Xent on the descriptions of two views of every image (SimCLR with the description as projection)."""
    z = model.outputs(torch.cat([views(x), views(x)]))["z"]
    loss = nt_xent(*z.chunk(2), temperature)
    return loss, {"nt_xent": loss.item()}


def fixmatch(weak_logits: torch.Tensor, strong_logits: torch.Tensor, confidence: float):
    """FixMatch's unlabeled loss and mask: cross entropy of the strong view against the weak view's
    pseudo-label, counted only where the weak view's top probability reaches `confidence`;
    averaged over all unlabeled images (so few confident images give a small loss)."""
    probs = weak_logits.detach().softmax(1)
    top, pseudo = probs.max(1)
    mask = (top >= confidence).float()
    return (F.cross_entropy(strong_logits, pseudo, reduction="none") * mask).mean(), mask
