"""Image corruptions (a registry) in the style of MNIST-C and ImageNet-C, for grayscale digits.

Sources of the severity tables:

- MNIST-C: N. Mu and J. Gilmer (2019), "MNIST-C: A Robustness Benchmark for Computer Vision",
  arXiv:1906.02337, and its generating code (google-research/mnist-c). MNIST-C publishes one
  setting per corruption; where its code has a five-level table it is quoted in the entry's
  docstring, and where it has a single setting that setting is severity 5 (or the severity
  named in the docstring) and the lower levels are milder versions of it.
- ImageNet-C: D. Hendrycks and T. Dietterich (2019), "Benchmarking Neural Network Robustness to
  Common Corruptions and Perturbations", ICLR. Its tables are for 224 x 224 images; where a
  parameter is a length in pixels it is rescaled to 28 x 28 as the docstring says.

Every entry is ``fn(x, severity, g) -> x'`` with ``x`` a float tensor [N, C, H, W] in [0, 1]
(C = 1 for the digits) on any device, ``severity`` an int 1..5 and ``g`` a ``torch.Generator``
on ``x``'s device that every random draw uses. The result has ``x``'s shape, dtype and device
and values in [0, 1]. Every entry is batched: random parameters are drawn per image from ``g``
(with shapes that do not depend on the severity, so that a fixed seed gives the same draws at
every severity and the corruption grows smoothly with it). Entries in ``DETERMINISTIC`` draw
nothing. Severity is monotone: on real MNIST digits the mean absolute change grows strictly
from severity 1 to 5 (tested).

``corrupt`` applies an entry to uint8 images [N, H, W], the form datasets are stored in.

This module imports only the standard library at the top, so that the Snakefile can validate a
config against ``NAMES`` without importing torch; every entry imports torch itself.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    from torch import Generator, Tensor

Corruption = Callable[["Tensor", int, "Generator"], "Tensor"]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")
SEVERITIES = (1, 2, 3, 4, 5)
_DETERMINISTIC: set[str] = set()


def _check_severity(severity: object, low: int) -> int:
    if (
        isinstance(severity, bool)
        or not isinstance(severity, numbers.Integral)
        or not low <= severity <= SEVERITIES[-1]
    ):
        raise ValueError(
            f"severity {severity!r} is out of range; accepted: integers {low}..{SEVERITIES[-1]}"
            + (" (0 = clean)" if low == 0 else "")
        )
    return int(severity)


def corruption(name: str, *, deterministic: bool = False) -> Callable[[Corruption], Corruption]:
    """Register ``fn(x, severity, g)`` as corruption ``name``.

    The registered entry checks the severity (1..5) and clamps the result to [0, 1] in ``x``'s
    dtype. ``deterministic`` declares that ``fn`` draws nothing from ``g``."""

    def decorate(fn: Corruption) -> Corruption:
        @functools.wraps(fn)
        def entry(x: Tensor, severity: int, g: Generator) -> Tensor:
            severity = _check_severity(severity, low=1)
            if x.ndim != 4 or not x.is_floating_point():
                raise ValueError(
                    f"expected a float tensor [N, C, H, W], got {x.dtype} {tuple(x.shape)}"
                )
            if x.shape[0] == 0:
                return x.clone()
            return fn(x, severity, g).to(x.dtype).clamp(0.0, 1.0)

        CORRUPTIONS.add(name, entry)
        if deterministic:
            _DETERMINISTIC.add(name)
        return entry

    return decorate


def corrupt(images: Tensor, name: str, severity: int, seed: int) -> Tensor:
    """Corrupt uint8 images [N, H, W] (0..255, any device) with ``name`` at ``severity``.

    Severity 0 returns a copy of ``images``; severities 1..5 apply the registered entry to the
    images as floats [N, 1, H, W] / 255 with a generator on the images' device seeded ``seed``,
    and return uint8 [N, H, W] (rounded). The number and order of the images never change."""
    import torch

    fn = CORRUPTIONS.get(name)  # unknown names fail first, whatever the severity
    severity = _check_severity(severity, low=0)
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise ValueError(
            f"expected uint8 images [N, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    if severity == 0:
        return images.clone()
    g = torch.Generator(device=images.device).manual_seed(int(seed))
    x = images.unsqueeze(1).to(torch.float32) / 255.0
    out = fn(x, severity, g)
    return out.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).squeeze(1)


# --- helpers (torch imported inside) --------------------------------------------------------


def _rand(g: Generator, x: Tensor, *shape: int) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` in ``x``'s dtype and device."""
    import torch

    return torch.rand(shape, generator=g, device=x.device, dtype=x.dtype)


def _randn(g: Generator, x: Tensor, *shape: int) -> Tensor:
    import torch

    return torch.randn(shape, generator=g, device=x.device, dtype=x.dtype)


def _blur(x: Tensor, sigma: float) -> Tensor:
    """torchvision's Gaussian blur (reflect padding), kernel truncated at 3 sigma.

    Channels are blurred as single-channel images, in chunks of 2048: torchvision convolves
    with the full 2-D kernel, which on the CPU costs memory in proportion to the batch."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    h, w = x.shape[-2:]
    size = [min(2 * math.ceil(3 * sigma) + 1, 2 * n - 1) for n in (w, h)]
    flat = x.reshape(-1, 1, h, w)
    chunks = [TF.gaussian_blur(c, kernel_size=size, sigma=[sigma, sigma]) for c in flat.split(2048)]
    return torch.cat(chunks).view(x.shape)


def _per_image(x: Tensor, choice: Tensor, outputs: list[Tensor]) -> Tensor:
    """Image ``i`` from ``outputs[choice[i]]``: per-image parameters drawn from a few values,
    for library ops that take one parameter per call (one call per value, no host sync)."""
    import torch

    stacked = torch.stack(outputs)  # [K, N, C, H, W]
    index = choice.view(1, -1, 1, 1, 1).expand(1, *x.shape)
    return stacked.gather(0, index).squeeze(0)


def _affine(x: Tensor, **kwargs) -> Tensor:
    """torchvision's affine about the image centre, bilinear, black outside the image."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    params = {"angle": 0.0, "translate": [0.0, 0.0], "scale": 1.0, "shear": [0.0, 0.0]}
    params.update(kwargs)
    return TF.affine(x, **params, interpolation=InterpolationMode.BILINEAR, fill=0.0)


def _signs(g: Generator, x: Tensor, k: int = 1) -> Tensor:
    """``k`` random bits per image as an int64 index 0 .. 2**k - 1 (per-image directions)."""
    import torch

    bits = (_rand(g, x, x.shape[0], k) < 0.5).long()
    return (bits * (2 ** torch.arange(k, device=x.device))).sum(1)


def _identity_grid(x: Tensor) -> Tensor:
    """Pixel centres in grid_sample's normalised coordinates (align_corners=False), [1, H, W, 2]:
    the grid torchvision's elastic adds its displacement to."""
    import torch

    h, w = x.shape[-2:]
    xs = (2 * torch.arange(w, device=x.device, dtype=x.dtype) + 1) / w - 1
    ys = (2 * torch.arange(h, device=x.device, dtype=x.dtype) + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def _line_profile(dist: Tensor) -> Tensor:
    """MNIST-C's stroke profile: 1 + log(1 - d / 2.3) for a pixel at distance d (in pixels)
    from the line, clipped to [0, 1] (full intensity within ~1.5 px, nothing beyond 2.3 px)."""
    d = dist.abs().clamp(max=2.3 - 1e-6)
    return (1 + (1 - d / 2.3).log()).clamp(0.0, 1.0)


def _pixel_coords(x: Tensor) -> tuple[Tensor, Tensor]:
    """Column and row index grids [1, 1, H, W] (float)."""
    import torch

    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(1, 1, h, w)
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(1, 1, h, w)
    return cols, rows


# --- noise --------------------------------------------------------------------------------------


@corruption("gaussian_noise")
def gaussian_noise(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Additive Gaussian noise, standard deviation 0.08, 0.12, 0.18, 0.26, 0.38 (ImageNet-C).

    Hand-written (x + sigma * z, z drawn from ``g`` per pixel): torchvision's gaussian_noise
    takes no generator."""
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    return x + sigma * _randn(g, x, *x.shape)


@corruption("shot_noise")
def shot_noise(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Poisson (shot) noise with 60, 25, 12, 5, 3 photons at full intensity (ImageNet-C).

    Poisson(x * c) / c, ImageNet-C's table, which MNIST-C uses (at severity 5). Hand-written
    with torch.poisson; black pixels stay black."""
    import torch

    c = (60.0, 25.0, 12.0, 5.0, 3.0)[severity - 1]
    return torch.poisson(x * c, generator=g) / c


@corruption("impulse_noise")
def impulse_noise(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Salt-and-pepper noise on 3, 6, 9, 17, 27 % of the pixels (ImageNet-C).

    Each pixel hit is set to 0 or 1 with equal probability; ImageNet-C's table, which MNIST-C
    uses (at severity 4). Hand-written; with the same seed the pixels hit at a severity are hit
    at every higher one."""
    import torch

    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    hit = _rand(g, x, *x.shape) < amount
    salt = (_rand(g, x, *x.shape) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


@corruption("speckle_noise")
def speckle_noise(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Multiplicative Gaussian noise, sigma 0.15, 0.2, 0.35, 0.45, 0.6 (ImageNet-C's extra).

    x + x * sigma * z, z standard normal per pixel. Hand-written; black pixels stay black."""
    sigma = (0.15, 0.2, 0.35, 0.45, 0.6)[severity - 1]
    return x + x * sigma * _randn(g, x, *x.shape)


# --- blur ---------------------------------------------------------------------------------------


@corruption("gaussian_blur", deterministic=True)
def gaussian_blur(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Gaussian blur with sigma 0.6, 0.9, 1.2, 1.6, 2.2 pixels (torchvision gaussian_blur).

    ImageNet-C's sigmas (1..6 px) are for 224 px images and MNIST-C's code applies them
    unchanged to 28 px digits, where sigma 3 and more leave a featureless smudge; these span
    the legible range on 28 x 28."""
    return _blur(x, (0.6, 0.9, 1.2, 1.6, 2.2)[severity - 1])


@corruption("defocus_blur", deterministic=True)
def defocus_blur(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Defocus blur: convolution with an anti-aliased disk of radius 1, 1.5, 2, 2.5, 3 pixels.

    ImageNet-C's radii 3..10 px (224 px images) scaled towards 28 px; the disk is aliased,
    normalised and smoothed with a Gaussian of sigma 0.5 (ImageNet-C's alias blur, torchvision
    gaussian_blur). The disk kernel and the convolution (torch conv2d, zero padding) are
    hand-written: no library op draws a disk."""
    import torch
    import torch.nn.functional as F

    radius = (1.0, 1.5, 2.0, 2.5, 3.0)[severity - 1]
    half = math.ceil(radius) + 1
    r = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    disk = ((r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) <= radius**2).to(x.dtype)
    kernel = _blur((disk / disk.sum()).view(1, 1, *disk.shape), 0.5)
    kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, -1, -1)
    chunks = x.split(2048)  # bounded memory on the CPU
    return torch.cat([F.conv2d(c, kernel, padding=half, groups=x.shape[1]) for c in chunks])


def _glass(x: Tensor, g: Generator, sigma: float, shift: int, iterations: int) -> Tensor:
    import torch

    n, c, h, w = x.shape
    out = _blur(x, sigma)
    cols, rows = _pixel_coords(x)
    inside = (rows >= shift) & (rows < h - shift) & (cols >= shift) & (cols < w - shift)
    # draws for the largest number of iterations, whatever the severity
    draws = _rand(g, x, 2, 3, n, c, h, w)
    for move, du, dv in draws[:iterations]:
        dy = (du * (2 * shift + 1)).floor() - shift
        dx = (dv * (2 * shift + 1)).floor() - shift
        take = (move < 0.5) & inside
        src_r = torch.where(take, rows + dy, rows).clamp(0, h - 1).long()
        src_c = torch.where(take, cols + dx, cols).clamp(0, w - 1).long()
        index = (src_r * w + src_c).view(n, c, h * w)
        out = out.view(n, c, h * w).gather(2, index).view(n, c, h, w)
    return _blur(out, sigma)


@corruption("glass_blur")
def glass_blur(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Glass blur: Gaussian blur, local pixel shuffles, Gaussian blur again (ImageNet-C).

    (sigma, max shift, iterations) = (0.7, 1, 2), (0.9, 2, 1), (1, 2, 2), (1.1, 3, 2), (1.5, 4,
    2): ImageNet-C's table, which MNIST-C applies to 28 px digits (at severity 1), with 2
    iterations instead of 3 at severity 3 (with 3 it is nearly as strong as severity 4 on
    digits).

    Blurs with torchvision gaussian_blur. The shuffle is hand-written and batched: in each
    iteration every pixel at least ``max shift`` from the border takes, with probability 1/2,
    the value of the pixel at a random offset in [-shift, shift]^2 (drawn per pixel and image;
    a gather, the parallel analogue of the papers' sequential swaps)."""
    sigma, shift, iterations = (
        (0.7, 1, 2),
        (0.9, 2, 1),
        (1.0, 2, 2),
        (1.1, 3, 2),
        (1.5, 4, 2),
    )[severity - 1]
    return _glass(x, g, sigma, shift, iterations)


@corruption("motion_blur")
def motion_blur(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Motion blur along a random direction per image, Gaussian sigma 0.8, 1.4, 2, 3, 4 px.

    The angle is uniform in [-45, 45] degrees from the horizontal, per image (MNIST-C); the
    kernel is one-sided, Gaussian weights of that sigma at 0 .. 3 sigma pixels along the
    direction, like ImageMagick's MotionBlurImage that both papers use (MNIST-C: radius 10,
    sigma 3 on 28 px digits, our severity 4; ImageNet-C's sigmas 3..15 are for 224 px).

    Hand-written: the per-image kernels (taps splatted bilinearly onto the pixel grid) are
    applied in one grouped torch conv2d, zero padding (the digits' black background)."""
    import torch
    import torch.nn.functional as F

    sigma = (0.8, 1.4, 2.0, 3.0, 4.0)[severity - 1]
    n, c, h, w = x.shape
    half = math.ceil(3 * sigma)
    angle = (_rand(g, x, n) * 90.0 - 45.0) * (math.pi / 180.0)
    steps = torch.arange(half + 1, device=x.device, dtype=x.dtype)
    weights = torch.exp(-(steps**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    # tap positions relative to the kernel centre, [N, T]
    px = steps.view(1, -1) * angle.cos().view(-1, 1)
    py = steps.view(1, -1) * angle.sin().view(-1, 1)
    grid = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    hat_x = (1 - (grid.view(1, 1, -1) - px.unsqueeze(-1)).abs()).clamp(min=0)  # [N, T, K]
    hat_y = (1 - (grid.view(1, 1, -1) - py.unsqueeze(-1)).abs()).clamp(min=0)
    kernel = torch.einsum("t,ntk,ntl->nkl", weights, hat_y, hat_x)  # [N, K, K]
    kernel = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # [N * C, 1, K, K]
    out = F.conv2d(x.reshape(1, n * c, h, w), kernel, padding=half, groups=n * c)
    return out.view(n, c, h, w)


# --- weather ------------------------------------------------------------------------------------


def _fractal(x: Tensor, g: Generator, decay: float) -> Tensor:
    """Plasma-like fractal noise in [0, 1], [N, 1, H, W], one field per image.

    A sum of octaves of uniform noise on grids of 3, 5, 9, 17 and 33 points bicubically
    upsampled to H x W, each octave's amplitude 1 / decay**2 of the previous one (MNIST-C's
    diamond-square draws wibble * U(-wibble, wibble) with wibble divided by ``decay`` per
    level), min-max normalised per image."""
    import torch.nn.functional as F

    n, _, h, w = x.shape
    out = x.new_zeros(n, 1, h, w)
    amplitude = 1.0
    for level in range(1, 6):
        points = 2**level + 1
        noise = _rand(g, x, n, 1, points, points) * 2 - 1
        out += amplitude * F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=True)
        amplitude /= decay**2
    low = out.amin(dim=(2, 3), keepdim=True)
    high = out.amax(dim=(2, 3), keepdim=True)
    return (out - low) / (high - low).clamp(min=1e-6)


@corruption("fog")
def fog(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Fog: fractal haze of strength 0.6, 1.1, 1.7, 2.3, 3 (MNIST-C's is our severity 5).

    x + c * fractal, rescaled by max / (max + c) so that the image keeps its maximum, with
    (c, decay) = (0.6, 2), (1.1, 2), (1.7, 1.7), (2.3, 1.5), (3, 1.4). ImageNet-C's table is
    (1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4) and MNIST-C uses its severity 5, which
    is ours; the lower strengths are spread out so that the change grows clearly with severity
    on digits.

    Hand-written (no library makes fog): the fractal is a plasma-like octave sum (see
    ``_fractal``), one field per image."""
    c, decay = ((0.6, 2.0), (1.1, 2.0), (1.7, 1.7), (2.3, 1.5), (3.0, 1.4))[severity - 1]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + c * _fractal(x, g, decay)) * peak / (peak + c)


@corruption("spatter")
def spatter(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Mud spatter: grey blobs over the image, covering more of it at each severity (MNIST-C).

    (mean, std, blur, threshold) = (0.65, 0.3, 2.5, 0.71), (0.65, 0.3, 2, 0.70), (0.65, 0.3,
    1.5, 0.68), (0.65, 0.3, 1.2, 0.66), (0.67, 0.4, 1, 0.65), then a mask blur of sigma 0.6
    with values below 0.8 dropped.

    MNIST-C's recipe (its "mud" spatter): Gaussian noise of that mean and std per pixel,
    Gaussian-blurred, thresholded into a mask, the mask blurred and its soft edge cut at 0.8,
    then x * (1 - m) + 63/255 * m. MNIST-C's table, (0.65, 0.3, 4, 0.69), (0.65, 0.3, 3, 0.68),
    (0.65, 0.3, 2, 0.68), (0.65, 0.3, 1, 0.65), (0.67, 0.4, 1, 0.65) with mask blurs 0.6, 0.6,
    0.5, 1.5, 1.5, was made for ImageNet-C's 224 px images; on 28 px its blurs of 3 and 4 px
    leave almost no blob, so the blurs are smaller and the thresholds tuned for monotone
    severity; severity 5 keeps MNIST-C's noise and threshold (MNIST-C uses severity 4).
    Blurs with torchvision gaussian_blur; the noise field is drawn per image."""
    import torch

    mean, std, sigma, threshold = (
        (0.65, 0.3, 2.5, 0.71),
        (0.65, 0.3, 2.0, 0.70),
        (0.65, 0.3, 1.5, 0.68),
        (0.65, 0.3, 1.2, 0.66),
        (0.67, 0.4, 1.0, 0.65),
    )[severity - 1]
    n, _, h, w = x.shape
    liquid = _blur(mean + std * _randn(g, x, n, 1, h, w), sigma)
    mask = _blur((liquid > threshold).to(x.dtype), 0.6)
    mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
    return x * (1 - mask) + (63.0 / 255.0) * mask


# --- digital ------------------------------------------------------------------------------------


@corruption("brightness", deterministic=True)
def brightness(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Brightness: 0.1, 0.2, 0.3, 0.4, 0.5 added to every pixel (ImageNet-C, MNIST-C).

    The papers add c to the HSV value, which for a grey image is the pixel itself (MNIST-C uses
    severity 5).

    Hand-written: torchvision's adjust_brightness multiplies by a factor, which leaves the
    digits' black background black."""
    return x + (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]


@corruption("contrast", deterministic=True)
def contrast(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Contrast towards each image's mean, factor 0.4, 0.3, 0.2, 0.1, 0.05 (ImageNet-C).

    torchvision adjust_contrast: mean + factor * (x - mean), the mean over each image."""
    from torchvision.transforms.v2 import functional as TF

    return TF.adjust_contrast(x, (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1])


@corruption("pixelate", deterministic=True)
def pixelate(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Pixelation: down to 14, 12, 10, 8, 6 pixels (of 28) and back up in blocks (ImageNet-C).

    torchvision resize: down with antialiased bilinear (close to ImageNet-C's box filter), up
    with nearest (the blocks); sizes scale with H / 28 and W / 28.

    ImageNet-C's factors 0.6, 0.5, 0.4, 0.3, 0.25 give 16, 14, 11, 8, 7 px on 28, but 16 px
    blocks (unequal, 28 / 16) change a digit no more than 14 px ones and 9 px no more than 10
    px, so the sizes are 0.5 .. 0.21 of the image in regular steps."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    size = (14, 12, 10, 8, 6)[severity - 1]
    h, w = x.shape[-2:]
    small = TF.resize(
        x,
        [max(1, round(size * h / 28)), max(1, round(size * w / 28))],
        interpolation=InterpolationMode.BILINEAR,
        antialias=True,
    )
    return TF.resize(small, [h, w], interpolation=InterpolationMode.NEAREST)


@corruption("jpeg_compression", deterministic=True)
def jpeg_compression(x: Tensor, severity: int, g: Generator) -> Tensor:
    """JPEG compression at quality 25, 18, 12, 8, 5 (ImageNet-C, tuned).

    torchvision jpeg on uint8 images (it accepts a batch and codes each image; on the CPU).

    ImageNet-C's qualities are 25, 18, 15, 10, 7 (MNIST-C's code has the same); on digits,
    quality 10 changes an image less than 12, and 7 less than 8, so the three highest
    severities use 12, 8 and 5."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    quality = (25, 18, 12, 8, 5)[severity - 1]
    images = x.detach().mul(255.0).round().clamp(0, 255).to("cpu", torch.uint8)
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs, which jpeg uses
        warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
        coded = TF.jpeg(images, quality=quality)
    return coded.to(x.device, x.dtype) / 255.0


@corruption("elastic_transform")
def elastic_transform(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Elastic deformation: a smooth random field per image, 0.9 .. 3.8 px rms (ImageNet-C).

    Uniform noise in [-1, 1] per pixel and axis, blurred with sigma 3 px and multiplied by
    alpha = 10, 17, 24, 32, 42 px (both x W / 28), for root-mean-square displacements of about
    0.9, 1.5, 2.2, 2.9 and 3.8 px; bilinear resampling, black outside the image.

    The recipe of ImageNet-C's elastic_transform and torchvision's ElasticTransform (blurred
    uniform noise times alpha). ImageNet-C's table for 28 px (MNIST-C's code), alpha = 28 *
    (2, 2, 0.05, 0.07, 0.12) with sigma = 28 * (0.7, 0.08, 0.01, 0.01, 0.01) (and a random
    affine part), does not grow with severity; here sigma is fixed at about 28 * 0.1 and alpha
    grows. torchvision's elastic takes one displacement field per call, so the per-image fields
    are applied with torch grid_sample on the grid torchvision's elastic uses."""
    import torch.nn.functional as F

    alpha = (10.0, 17.0, 24.0, 32.0, 42.0)[severity - 1]
    n, _, h, w = x.shape
    noise = _rand(g, x, n, 2, h, w) * 2 - 1
    field = _blur(noise, 3.0 * w / 28) * (alpha * w / 28)  # displacement in pixels, [N, 2, H, W]
    scale = x.new_tensor([2.0 / w, 2.0 / h]).view(1, 1, 1, 2)
    grid = _identity_grid(x) + field.permute(0, 2, 3, 1) * scale
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# --- geometric ----------------------------------------------------------------------------------

_ANGLES = (11.5, 22.9, 34.4, 45.8, 57.3)  # MNIST-C's 0.2, 0.4, 0.6, 0.8, 1.0 radians in degrees


@corruption("shear")
def shear(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Horizontal shear by 11.5, 22.9, 34.4, 45.8, 57.3 degrees, sign random per image (MNIST-C).

    MNIST-C's 0.2 .. 1.0 rad (its dataset uses severity 2), about the centre. torchvision
    affine, bilinear, black fill, one call per sign."""
    a = _ANGLES[severity - 1]
    choice = _signs(g, x)
    return _per_image(x, choice, [_affine(x, shear=[s * a, 0.0]) for s in (1.0, -1.0)])


@corruption("scale", deterministic=True)
def scale(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Zoom out about the centre to 0.92, 0.84, 0.76, 0.68, 0.6 of the size (MNIST-C, tuned).

    torchvision affine, bilinear, black fill.

    MNIST-C's table is 0.9, 0.8, 0.7, 0.6, 0.5 (its dataset uses 0.7); on digits the change
    from the clean image peaks near 0.55 (the shrunken digit stops overlapping the original
    and then loses ink), so the table ends at 0.6 to keep severity monotone."""
    return _affine(x, scale=(0.92, 0.84, 0.76, 0.68, 0.6)[severity - 1])


@corruption("rotate")
def rotate(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Rotation by 11.5, 22.9, 34.4, 45.8, 57.3 degrees, direction random per image (MNIST-C).

    MNIST-C's 0.2 .. 1.0 rad (its dataset uses severity 2), about the centre. torchvision
    affine, bilinear, black fill, one call per direction."""
    a = _ANGLES[severity - 1]
    choice = _signs(g, x)
    return _per_image(x, choice, [_affine(x, angle=s * a) for s in (1.0, -1.0)])


@corruption("translate")
def translate(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Shift by 1, 1.5, 2, 3, 4 px in x and in y, signs random per image (MNIST-C, tuned).

    Shifts scale with W / 28. torchvision affine, bilinear (a half-pixel shift also smooths),
    black fill, one call per pair of signs.

    MNIST-C shifts by 1, 2, 3, 4, 5 px (its dataset uses 3); on digits a 5 px diagonal shift
    changes the image hardly more than 4 px (the shifted digit no longer overlaps the
    original), so the table ends at 4 px with a half-pixel step to keep severity monotone."""
    d = (1.0, 1.5, 2.0, 3.0, 4.0)[severity - 1] * x.shape[-1] / 28.0
    choice = _signs(g, x, k=2)
    shifts = [[sx * d, sy * d] for sy in (1.0, -1.0) for sx in (1.0, -1.0)]
    return _per_image(x, choice, [_affine(x, translate=t) for t in shifts])


# --- MNIST-C overlays ---------------------------------------------------------------------------


@corruption("stripe", deterministic=True)
def stripe(x: Tensor, severity: int, g: Generator) -> Tensor:
    """Inverted vertical bands at both sides, 2, 3, 5, 6, 7 columns wide (x W / 28).

    MNIST-C inverts the outer 7 columns on each side (a quarter of the width), our severity 5;
    lower severities invert narrower bands. Hand-written (1 - x on the bands)."""
    w = x.shape[-1]
    width = round((2, 3, 5, 6, 7)[severity - 1] * w / 28)
    out = x.clone()
    out[..., :width] = 1 - x[..., :width]
    out[..., w - width :] = 1 - x[..., w - width :]
    return out


@corruption("dotted_line")
def dotted_line(x: Tensor, severity: int, g: Generator) -> Tensor:
    """1, 2, 3, 4, 5 dotted lines across the image (MNIST-C draws one, our severity 1).

    Each line runs from the left to the right edge between rows drawn uniformly per image, has
    MNIST-C's stroke profile over the vertical distance to the line, and is blanked on every
    other pair of columns (the dots); lines are added to the image and clipped. Hand-written;
    the five lines' rows are drawn whatever the severity, the first ``severity`` are drawn."""
    import torch

    n, _, h, w = x.shape
    cols, rows = _pixel_coords(x)
    ends = _rand(g, x, 5, n, 2) * (h - 1)  # [lines, N, (left row, right row)]
    strokes = x.new_zeros(n, 1, h, w)
    for line in ends[:severity]:
        r0, r1 = line[:, 0].view(n, 1, 1, 1), line[:, 1].view(n, 1, 1, 1)
        strokes = torch.maximum(strokes, _line_profile(rows - (r0 + (r1 - r0) * cols / (w - 1))))
    dots = ((cols // 2) % 2 == 1).to(x.dtype)
    return x + strokes * dots


@corruption("zigzag")
def zigzag(x: Tensor, severity: int, g: Generator) -> Tensor:
    """1, 2, 3, 4, 5 zigzag lines (MNIST-C draws one, our severity 1).

    MNIST-C's zigzag: from column 2 to column 25 (x W / 28), starting at a random row and
    ending up to 5 rows higher or lower, folded with segments of length 2 and amplitude 2 px,
    with MNIST-C's stroke profile; lines are added to the image and clipped. Hand-written and
    batched: a pixel's coordinates along and across the base line, u and v, give its distance
    v - 2 * tri(u / 2) to the zigzag (tri the unit triangle wave, peaks at odd u / 2); the five
    lines are drawn whatever the severity, the first ``severity`` are drawn."""
    import torch

    n, _, h, w = x.shape
    cols, rows = _pixel_coords(x)
    c0, c1 = 2.0 * w / 28, 25.0 * w / 28
    a = b = 2.0
    strokes = x.new_zeros(n, 1, h, w)
    for start, slope in _rand(g, x, 5, 2, n)[:severity]:  # [lines, (start row, end shift), N]
        r0 = (start * (h - 1)).view(n, 1, 1, 1)
        theta = ((slope * 10 - 5) / (c1 - c0)).atan().view(n, 1, 1, 1)
        dc, dr = cols - c0, rows - r0
        u = dc * theta.cos() + dr * theta.sin()  # along the base line
        v = -dc * theta.sin() + dr * theta.cos()  # across it
        phase = (u / a + 1).remainder(4.0)
        tri = 1 - (phase - 2).abs()  # 0 at u = 0, +1 at u = a, -1 at u = 3a, period 4a
        inside = ((u >= 0) & (u <= (c1 - c0) / theta.cos())).to(x.dtype)
        strokes = torch.maximum(strokes, _line_profile(v - b * tri) * inside)
    return x + strokes


def _edges(x: Tensor) -> Tensor:
    """Canny-style edge map (1 on edges, 0 elsewhere), batched.

    Gaussian smoothing (sigma 1, torchvision gaussian_blur), Sobel gradients (torch conv2d,
    replicate padding), non-maximum suppression across the gradient direction quantised to
    0 / 45 / 90 / 135 degrees, double threshold at 0.1 and 0.2 on the (unnormalised) Sobel
    magnitude of the [0, 1] image (skimage's canny defaults) and hysteresis by 8 rounds of
    3 x 3 dilation of the strong edges within the weak ones."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    s = _blur(x, 1.0).reshape(n * c, 1, h, w)
    sobel = x.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.t()]).unsqueeze(1)  # d/dcol, d/drow
    grad = F.conv2d(F.pad(s, (1, 1, 1, 1), mode="replicate"), kernels)
    gx, gy = grad[:, :1], grad[:, 1:]
    mag = torch.hypot(gx, gy)
    angle = torch.atan2(gy, gx).remainder(math.pi)  # gradient direction in [0, pi)
    sector = ((angle + math.pi / 8) // (math.pi / 4)).long() % 4  # 0, 45, 90, 135 degrees
    padded = F.pad(mag, (1, 1, 1, 1))
    offsets = ((0, 1), (1, 1), (1, 0), (1, -1))  # (drow, dcol) along each sector's gradient
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for k, (dr, dc) in enumerate(offsets):
        ahead = padded[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        behind = padded[..., 1 - dr : 1 - dr + h, 1 - dc : 1 - dc + w]
        keep |= (sector == k) & (mag >= ahead) & (mag >= behind)
    thin = torch.where(keep, mag, torch.zeros_like(mag))
    weak = thin >= 0.1
    strong = thin >= 0.2
    for _ in range(8):
        grown = F.max_pool2d(strong.to(x.dtype), 3, stride=1, padding=1) > 0
        strong = strong | (grown & weak)
    return strong.to(x.dtype).view(n, c, h, w)


@corruption("canny_edges", deterministic=True)
def canny_edges(x: Tensor, severity: int, g: Generator) -> Tensor:
    """The image blended with its Canny-style edge map, edge weight 0.2, 0.4, 0.6, 0.8, 1.

    MNIST-C replaces the digit by its Canny edges (skimage canny, sigma 1), our severity 5.
    Hand-written (no Canny in torch or torchvision): smoothing with torchvision gaussian_blur,
    Sobel gradient magnitude, non-maximum suppression and a double threshold with hysteresis
    (see ``_edges``)."""
    weight = (0.2, 0.4, 0.6, 0.8, 1.0)[severity - 1]
    return (1 - weight) * x + weight * _edges(x)


NAMES: list[str] = CORRUPTIONS.names()
DETERMINISTIC: frozenset[str] = frozenset(_DETERMINISTIC)
