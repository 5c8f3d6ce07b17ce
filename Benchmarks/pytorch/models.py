#!/usr/bin/env python3
"""PyTorch twins of every model of Latent's zoo, with the same module names.

Each class here builds the layers that Sources/LatentModels builds, in the same order and
under the same names, so `model.state_dict()` has exactly the keys (and shapes) of a Latent
checkpoint's weights and `load_state_dict(strict=True)` takes them as they are:

    vae-fc, cvae   FCVAE            encoder.*, mu_layer.*, logvar_layer.*, decoder.*
    vae-conv       ConvVAE          encoder.*, fc_mu.*, fc_logvar.*, decoder.*
    beta-vae       BetaVAE          encoder.*, fc_mean.*, fc_std.0.*, decoder.*
                                    (shared_batchnorm: decoder.7 is encoder.4, as report 004)
    ae             Autoencoder      encoder.*, decoder.*
    vqvae          VQVAE            encoder.*, codebook.weight, codebook.usage (buffer), decoder.*
    gan-mlp, dcgan GAN              generator.*, discriminator.*
    designed-latent DesignedLatent  decoder.*
    pca-decoder    PCADecoder       pca.mean, pca.components, pca.std (buffers), decoder.*
    classifier     Classifier       features.*, classifier.1.*

`build(name, config)` takes the model name and a dict with Latent's TrainingOptions field
names (Sources/LatentModels/TrainingOptions.swift: latentDim, hidden, depth, batchnorm,
dropout, codebookSize, codebookDim, commitment, sharedBatchnorm, parameterization, loss,
beta, kl, ...); missing fields take Latent's catalogue defaults for that model.

Each model has the deterministic functions a checkpoint check compares (eval mode):
`reconstruct(x, labels)` for the autoencoders, `decode(codes, labels)`, `generate(z)` for
the GANs (mapped to [0, 1]) and `classify(x)` (softmax probabilities), and `losses(x,
labels)` giving the training objective's terms as sums over the batch, as Latent reports
them (the trainer divides by the number of images).

    python3 Benchmarks/pytorch/models.py vae-conv                 # state_dict names, shapes
    python3 Benchmarks/pytorch/models.py ae --config '{"latentDim": 2}' --json
    python3 Benchmarks/pytorch/models.py --cases cases.json          # [{"model": ..., ...}, ...]

(torch 2.13.0+cpu: pip install "torch==2.13.0+cpu").
"""
import argparse
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PIXELS = 28 * 28
CLASSES = 10

# Latent's ModelCatalog defaults for the fields the architectures read.
CATALOG = {
    "vae-fc": dict(latentDim=15, hidden=400, depth=3),
    "cvae": dict(latentDim=15, hidden=400, depth=3),
    "vae-conv": dict(latentDim=32),
    "beta-vae": dict(latentDim=10, parameterization="std", beta=2.0),
    "ae": dict(latentDim=10, hidden=400, depth=2),
    "vqvae": dict(latentDim=16, codebookSize=512, codebookDim=16, commitment=0.25),
    "gan-mlp": dict(latentDim=100),
    "dcgan": dict(latentDim=100),
    "designed-latent": dict(latentDim=10, hidden=400, depth=2),
    "pca-decoder": dict(latentDim=3, hidden=400, depth=2),
    "classifier": dict(dropout=0.25),
}
# TrainingOptions' own defaults.
BASE = dict(latentDim=15, hidden=400, depth=3, batchnorm=False, dropout=0.0, loss="bce", beta=1.0, kl=True,
            parameterization="logvar", codebookSize=512, codebookDim=16, commitment=0.25,
            sharedBatchnorm=False, ganSharedZeroGrad=False)
MODELS = list(CATALOG)


def options(name, config=None):
    """Latent's options for `name`: TrainingOptions defaults, the catalogue's, then `config`."""
    if name not in CATALOG:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    merged = dict(BASE)
    merged.update(CATALOG[name])
    merged.update(config or {})
    return merged


def reconstruction_loss(kind, prediction, target):
    """Summed over every element, as Latent's ElementwiseLoss(kind, .sum)."""
    if kind == "bce":
        return F.binary_cross_entropy(prediction, target, reduction="sum")
    if kind == "mse":
        return F.mse_loss(prediction, target, reduction="sum")
    if kind == "l1":
        return F.l1_loss(prediction, target, reduction="sum")
    raise ValueError(f"unknown loss {kind!r}")


def hidden_layers(width, o):
    """depth x (Linear [BatchNorm1d] ReLU [Dropout]) to `hidden` (VAEArchitecture.appendHidden)."""
    layers = []
    for _ in range(o["depth"]):
        layers.append(nn.Linear(width, o["hidden"]))
        if o["batchnorm"]:
            layers.append(nn.BatchNorm1d(o["hidden"]))
        layers.append(nn.ReLU())
        if o["dropout"] > 0:
            layers.append(nn.Dropout(o["dropout"]))
        width = o["hidden"]
    return layers


def fc_decoder(inputs, o):
    """ModelSupport.fullyConnectedDecoder: hidden layers, Linear(hidden, 784), Sigmoid, Unflatten."""
    return nn.Sequential(*hidden_layers(inputs, o), nn.Linear(o["hidden"], PIXELS), nn.Sigmoid(),
                         nn.Unflatten(1, (1, 28, 28)))


def one_hot(labels):
    return F.one_hot(labels.long(), CLASSES).float()


def std_of(parameter, parameterization):
    if parameterization == "logvar":
        return torch.exp(parameter / 2)
    if parameterization == "logstd":
        return torch.exp(parameter)
    if parameterization == "std":
        return parameter
    raise ValueError(f"unknown parameterization {parameterization!r}")


def gaussian_kl(mean, parameter, parameterization):
    """Sum of KL(N(mean, std^2) || N(0, 1)), as Backend.klDivergence."""
    std = std_of(parameter, parameterization)
    return 0.5 * torch.sum(std * std + mean * mean - 1 - 2 * torch.log(std))


class GaussianVAEBase(nn.Module):
    """What the four VAEs share (GaussianVAE in VAE.swift): heads, reparameterisation, loss."""
    conditional = False
    mean_head = "fc_mu"
    parameter_head = "fc_logvar"

    def encode(self, x, labels=None):
        if self.conditional:
            x = torch.cat([x.reshape(x.shape[0], -1), one_hot(labels)], dim=1)
        hidden = self.encoder(x)
        return getattr(self, self.mean_head)(hidden), getattr(self, self.parameter_head)(hidden)

    def decode(self, z, labels=None):
        if self.conditional:
            if labels is None:
                labels = torch.arange(z.shape[0]) % CLASSES
            z = torch.cat([z, one_hot(labels)], dim=1)
        return self.decoder(z).reshape(z.shape[0], 1, 28, 28)

    def reconstruct(self, x, labels=None):
        mean, _ = self.encode(x, labels)
        return self.decode(mean, labels)

    def losses(self, x, labels=None, noise=None):
        """[loss, recon, kl] as sums over the batch; `noise` replaces the eps draw."""
        mean, parameter = self.encode(x, labels)
        std = std_of(parameter, self.o["parameterization"])
        eps = torch.randn_like(std) if noise is None else noise
        recon = reconstruction_loss(self.o["loss"], self.decode(mean + std * eps, labels), x)
        kl = gaussian_kl(mean, parameter, self.o["parameterization"])
        weight = self.o["beta"] if self.o["kl"] else 0.0
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl}


class FCVAE(GaussianVAEBase):
    """Report 003 (vae-fc) and its conditional twin (cvae): VAEArchitecture.fullyConnected."""
    mean_head = "mu_layer"
    parameter_head = "logvar_layer"

    def __init__(self, o, conditional=False):
        super().__init__()
        self.o = o
        self.conditional = conditional
        extra = CLASSES if conditional else 0
        self.encoder = nn.Sequential(*([] if conditional else [nn.Flatten()]), *hidden_layers(PIXELS + extra, o))
        self.mu_layer = nn.Linear(o["hidden"], o["latentDim"])
        self.logvar_layer = nn.Linear(o["hidden"], o["latentDim"])
        self.decoder = fc_decoder(o["latentDim"] + extra, o)


class ConvVAE(GaussianVAEBase):
    """Report 004's conv VAE exactly (VAEArchitecture.convolutional)."""

    def __init__(self, o):
        super().__init__()
        self.o = o
        features = 128 * 7 * 7
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.Flatten())
        self.fc_mu = nn.Linear(features, o["latentDim"])
        self.fc_logvar = nn.Linear(features, o["latentDim"])
        self.decoder = nn.Sequential(
            nn.Linear(o["latentDim"], features), nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())


class BetaVAE(GaussianVAEBase):
    """Report 004's beta-VAE exactly (VAEArchitecture.betaVAE); a softplus std head."""
    mean_head = "fc_mean"
    parameter_head = "fc_std"

    def __init__(self, o):
        super().__init__()
        self.o = o
        norm = nn.BatchNorm2d(16)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
            norm,
            nn.Conv2d(16, 32, 3, 2, 0), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(288, 128), nn.ReLU())
        self.fc_mean = nn.Linear(128, o["latentDim"])
        self.fc_std = nn.Sequential(nn.Linear(128, o["latentDim"]), nn.Softplus())
        self.decoder = nn.Sequential(
            nn.Linear(o["latentDim"], 128), nn.ReLU(),
            nn.Linear(128, 288), nn.ReLU(),
            nn.Unflatten(1, (32, 3, 3)),
            nn.ConvTranspose2d(32, 16, 3, 2), nn.ReLU(),
            norm if o["sharedBatchnorm"] else nn.BatchNorm2d(16),
            nn.ConvTranspose2d(16, 8, 3, 2, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, 2, 1, 1), nn.Sigmoid())


class Autoencoder(nn.Module):
    """Report 001's AE (Autoencoder.swift)."""

    def __init__(self, o):
        super().__init__()
        self.o = o
        self.encoder = nn.Sequential(nn.Flatten(), *hidden_layers(PIXELS, o), nn.Linear(o["hidden"], o["latentDim"]))
        self.decoder = fc_decoder(o["latentDim"], o)

    def encode(self, x, labels=None):
        return self.encoder(x)

    def decode(self, codes, labels=None):
        return self.decoder(codes)

    def reconstruct(self, x, labels=None):
        return self.decoder(self.encoder(x))

    def losses(self, x, labels=None):
        return {"loss": reconstruction_loss(self.o["loss"], self.reconstruct(x), x)}


class Codebook(nn.Embedding):
    """nn.Embedding(K, D) initialised uniform(-1/K, 1/K), plus the buffer `usage`
    (positions, K): Latent's moving average of how often each entry is chosen at each
    position of the code map during training (the prior its `generate` samples from)."""

    def __init__(self, entries, width, positions):
        super().__init__(entries, width)
        self.weight.data.uniform_(-1 / entries, 1 / entries)
        self.register_buffer("usage", torch.zeros(positions, entries))


class VQVAE(nn.Module):
    """Report 001's VQ-VAE (VQVAE.swift): codebook nn.Embedding(K, D), uniform(-1/K, 1/K)."""

    def __init__(self, o):
        super().__init__()
        self.o = o
        d, k = o["codebookDim"], o["codebookSize"]
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, d, 1))
        self.codebook = Codebook(k, d, positions=49)
        self.decoder = nn.Sequential(
            nn.Conv2d(d, 64, 3, 1, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid())

    def quantize(self, z_e):
        """z_e (N, D, H, W) -> indices (N, H, W), z_q (N, D, H, W); ties to the lowest index."""
        n, d, h, w = z_e.shape
        rows = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        # Squared differences summed, as Latent's nearestCodebookEntry (not the expanded
        # ||a||^2 - 2ab + ||b||^2, whose rounding can flip near-ties), in blocks of rows.
        indices = torch.cat([((block[:, None, :] - self.codebook.weight[None, :, :]) ** 2).sum(-1).argmin(dim=1)
                             for block in rows.split(2048)])
        z_q = self.codebook.weight[indices].reshape(n, h, w, d).permute(0, 3, 1, 2)
        return indices.reshape(n, h, w), z_q

    def decode_indices(self, indices):
        """indices (N, H, W) -> images."""
        z_q = self.codebook(indices).permute(0, 3, 1, 2)
        return self.decoder(z_q)

    def reconstruct(self, x, labels=None):
        _, z_q = self.quantize(self.encoder(x))
        return self.decoder(z_q)

    def losses(self, x, labels=None):
        """[loss, recon, vq]: recon summed, vq = SSE(sg z_e, e) + commitment * SSE(z_e, sg e)."""
        z_e = self.encoder(x)
        _, z_q = self.quantize(z_e)
        codebook = ((z_e.detach() - z_q) ** 2).sum()
        commitment = ((z_e - z_q.detach()) ** 2).sum()
        straight_through = z_e + (z_q - z_e).detach()
        recon = reconstruction_loss(self.o["loss"], self.decoder(straight_through), x)
        vq = codebook + self.o["commitment"] * commitment
        return {"loss": recon + vq, "recon": recon, "vq": vq}


class GAN(nn.Module):
    """gan-mlp (report 004 exactly) and dcgan (GAN.swift); images in [-1, 1]."""

    def __init__(self, o, convolutional):
        super().__init__()
        self.o = o
        z = o["latentDim"]
        if not convolutional:
            self.generator = nn.Sequential(
                nn.Linear(z, 128), nn.LeakyReLU(0.2),
                nn.Linear(128, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2),
                nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
                nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
                nn.Linear(1024, PIXELS), nn.Tanh(),
                nn.Unflatten(1, (1, 28, 28)))
            self.discriminator = nn.Sequential(
                nn.Flatten(),
                nn.Linear(PIXELS, 512), nn.LeakyReLU(0.2),
                nn.Linear(512, 256), nn.LeakyReLU(0.2),
                nn.Linear(256, 1), nn.Sigmoid())
        else:
            features = 128 * 7 * 7
            self.generator = nn.Sequential(
                nn.Linear(z, features), nn.BatchNorm1d(features), nn.ReLU(),
                nn.Unflatten(1, (128, 7, 7)),
                nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
            self.discriminator = nn.Sequential(
                nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(features, 1), nn.Sigmoid())
            self.apply(dcgan_weights_init)

    def generate(self, z):
        """G(z) mapped from [-1, 1] to [0, 1], as Latent's generate/decode."""
        return ((self.generator(z) + 1) / 2).clamp(0, 1)

    def decode(self, z, labels=None):
        return self.generate(z)

    def losses(self, x, labels=None, z=None):
        """g_loss and d_loss (report 004: mean BCE; d_loss the average of real and fake) as
        sums over the batch, with the same fakes for both."""
        n = x.shape[0]
        z = torch.randn(n, self.o["latentDim"]) if z is None else z
        real, fake = torch.ones(n, 1), torch.zeros(n, 1)
        generated = self.generator(z)
        g_loss = F.binary_cross_entropy(self.discriminator(generated), real, reduction="sum")
        d_loss = (F.binary_cross_entropy(self.discriminator(x), real, reduction="sum")
                  + F.binary_cross_entropy(self.discriminator(generated.detach()), fake, reduction="sum")) / 2
        return {"loss": g_loss + d_loss, "g_loss": g_loss, "d_loss": d_loss}


def dcgan_weights_init(module):
    """The PyTorch DCGAN tutorial's weights_init (GAN.dcganInitialization)."""
    name = module.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(module.weight.data, 0.0, 0.02)
    elif name.find("BatchNorm2d") != -1:
        nn.init.normal_(module.weight.data, 1.0, 0.02)
        nn.init.constant_(module.bias.data, 0)


class DesignedLatent(nn.Module):
    """Report 001 try 1 (DesignedLatent.swift): decoder only; class k's code is [k, ..., k] + noise."""

    def __init__(self, o, class_scale=1.0, code_noise=1.0):
        super().__init__()
        self.o = o
        self.class_scale = class_scale
        self.code_noise = code_noise
        self.decoder = fc_decoder(o["latentDim"], o)

    def codes(self, labels, noise=None):
        base = self.class_scale * labels.float()[:, None].expand(-1, self.o["latentDim"])
        eps = torch.randn(base.shape) if noise is None else noise
        return base + self.code_noise * eps

    def decode(self, codes, labels=None):
        return self.decoder(codes)

    def losses(self, x, labels, noise=None):
        return {"loss": reconstruction_loss(self.o["loss"], self.decoder(self.codes(labels, noise)), x)}


class PCAProjection(nn.Module):
    """The fixed PCA encoder: codes = (x - mean) components^T."""

    def __init__(self, dimension, count):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dimension))
        self.register_buffer("components", torch.zeros(count, dimension))
        self.register_buffer("std", torch.zeros(count))

    def forward(self, x):
        return (x.reshape(x.shape[0], -1) - self.mean) @ self.components.t()


class PCADecoder(nn.Module):
    """Report 001 try 2 (PCADecoder.swift): PCA coordinates -> trained FC decoder."""

    def __init__(self, o):
        super().__init__()
        self.o = o
        self.pca = PCAProjection(PIXELS, o["latentDim"])
        self.decoder = fc_decoder(o["latentDim"], o)

    def fit(self, images):
        """The PCA of images (N, 784) in [0, 1], by torch.linalg.eigh of the covariance;
        signs as Latent's (largest-magnitude element positive)."""
        x = images.reshape(images.shape[0], -1).double()
        mean = x.mean(0)
        centred = x - mean
        covariance = centred.t() @ centred / (x.shape[0] - 1)
        values, vectors = torch.linalg.eigh(covariance)
        k = self.o["latentDim"]
        order = torch.argsort(values, descending=True)[:k]
        components = vectors[:, order].t()
        largest = components.abs().argmax(dim=1)
        signs = torch.sign(components[torch.arange(k), largest])
        self.pca.mean.copy_(mean.float())
        self.pca.components.copy_((components * signs[:, None]).float())
        self.pca.std.copy_(values[order].clamp(min=0).sqrt().float())

    def encode(self, x, labels=None):
        return self.pca(x)

    def decode(self, codes, labels=None):
        return self.decoder(codes)

    def reconstruct(self, x, labels=None):
        return self.decoder(self.pca(x))

    def losses(self, x, labels=None):
        return {"loss": reconstruction_loss(self.o["loss"], self.reconstruct(x), x)}


class Classifier(nn.Module):
    """The LeNet-style MNIST classifier (Classifier.swift)."""

    def __init__(self, o):
        super().__init__()
        self.o = o
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.classifier = nn.Sequential(nn.Dropout(o["dropout"]), nn.Linear(128, CLASSES))

    def forward(self, x):
        return self.classifier(self.features(x))

    def classify(self, x):
        return F.softmax(self(x), dim=1)

    def losses(self, x, labels):
        logits = self(x)
        return {"loss": F.cross_entropy(logits, labels.long(), reduction="sum"),
                "error_rate": (logits.argmax(1) != labels.long()).float().sum()}


def build(name, config=None):
    """The PyTorch twin of Latent model `name` with Latent's options `config` (a dict)."""
    o = options(name, config)
    if name == "vae-fc":
        return FCVAE(o, conditional=False)
    if name == "cvae":
        return FCVAE(o, conditional=True)
    if name == "vae-conv":
        return ConvVAE(o)
    if name == "beta-vae":
        return BetaVAE(o)
    if name == "ae":
        return Autoencoder(o)
    if name == "vqvae":
        return VQVAE(o)
    if name == "gan-mlp":
        return GAN(o, convolutional=False)
    if name == "dcgan":
        return GAN(o, convolutional=True)
    if name == "designed-latent":
        return DesignedLatent(o)
    if name == "pca-decoder":
        return PCADecoder(o)
    if name == "classifier":
        return Classifier(o)
    raise ValueError(f"unknown model {name!r}")


# The deterministic function a checkpoint check compares, per model (check_checkpoint.py).
DEFAULT_FUNCTION = {
    "vae-fc": "reconstruct", "cvae": "reconstruct", "vae-conv": "reconstruct", "beta-vae": "reconstruct",
    "ae": "reconstruct", "vqvae": "reconstruct", "pca-decoder": "reconstruct",
    "designed-latent": "decode", "gan-mlp": "generate", "dcgan": "generate", "classifier": "classify",
}


@torch.no_grad()
def apply(model, function, inputs, labels=None):
    """Runs `function` (reconstruct, decode, generate, classify) in eval mode."""
    model.eval()
    if function == "reconstruct":
        return model.reconstruct(inputs, labels)
    if function == "decode":
        return model.decode(inputs, labels)
    if function == "generate":
        return model.generate(inputs)
    if function == "classify":
        return model.classify(inputs)
    raise ValueError(f"unknown function {function!r}")


def main():
    parser = argparse.ArgumentParser(description="Print a Latent model's PyTorch state_dict names and shapes.")
    parser.add_argument("model", nargs="?", choices=MODELS)
    parser.add_argument("--config", default="{}", help="JSON object of TrainingOptions fields")
    parser.add_argument("--json", action="store_true", help="one JSON object {name: shape}, in state_dict order")
    parser.add_argument("--cases", help="a JSON file holding a list of TrainingOptions objects (with 'model'): "
                                        "prints one JSON line {name: shape} per case")
    args = parser.parse_args()
    if args.cases:
        with open(args.cases) as handle:
            for config in json.load(handle):
                state = build(config["model"], config).state_dict()
                print(json.dumps({name: list(tensor.shape) for name, tensor in state.items()}))
        return
    if args.model is None:
        parser.error("name a model or pass --cases")
    model = build(args.model, json.loads(args.config))
    state = model.state_dict()
    if args.json:
        print(json.dumps({name: list(tensor.shape) for name, tensor in state.items()}))
        return
    for name, tensor in state.items():
        print(f"{name:40s} {tuple(tensor.shape)}")
    count = sum(p.numel() for p in model.parameters())
    print(f"{count} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
