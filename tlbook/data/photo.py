"""One photo, as a model takes it: upright, opaque, RGB, its centre cropped to the model's aspect
ratio and resized (Chapter 9).

:func:`read_photo` prepares a training photo, a test photo and a new photo alike, from a file, a
Pillow image or an array; :func:`open_photo` and :func:`upright_rgb` are its two steps, which
:mod:`tlbook.data.photo_folder` also uses to check every file of a folder before training.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlbook.data.folders import ImageFolderError, image_size_pair

#: Image formats read (as Pillow names them; ``MPO`` is the JPEG variant many phones write).
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP", "TIFF")
#: The grey every transparent pixel is composited on, as the book's own photos are.
BACKGROUND = (128, 128, 128)


def read_photo(
    photo, *, image_size: int | tuple[int, int] = (224, 224), background: Sequence[int] = BACKGROUND
) -> np.ndarray:
    """One photo as a model takes it: upright, opaque, RGB, its centre cropped to the aspect ratio
    of ``image_size`` and resized to it.

    Training photos, test photos and a new photo all go through this function, so all three are
    prepared the same way. In order: the EXIF orientation a camera wrote is applied; transparent
    pixels are composited on ``background``; grayscale, palette and CMYK become RGB; the largest
    centred region of the target aspect ratio is resized (Pillow, Lanczos: smooth when a large
    photo shrinks) to ``image_size``. A photo already of that size is returned pixel for pixel.

    Args:
        photo: a file path, a Pillow image, or an array ``(h, w)``, ``(h, w, 3)`` or ``(h, w, 4)``
            with values 0..255.
        image_size: ``(height, width)`` in pixels, as Keras takes it, or one side for a square.
        background: the RGB colour behind transparent pixels, 0..255 each.

    Returns:
        ``uint8`` array ``(height, width, 3)``.

    Raises:
        ImageFolderError: a file that is not an image, is corrupt or truncated, or is too large to
            decode safely (the message names it).
        ValueError: a bad ``image_size``, ``background`` or array shape.
    """
    from PIL import Image

    height, width = image_size_pair(image_size)
    background = _background(background)
    try:
        if isinstance(photo, Image.Image):
            image, _ = upright_rgb(photo, background)
        elif isinstance(photo, (str, os.PathLike)):
            with open_photo(Path(photo)) as opened:
                opened.draft(None, (max(height, width),) * 2)  # JPEG: decode at a reduced scale, still large enough
                image, _ = upright_rgb(opened, background)
        else:
            image, _ = upright_rgb(_from_array(photo), background)
    except UnusablePhoto as exc:
        name = repr(str(photo)) if isinstance(photo, (str, os.PathLike)) else "the image"
        raise ImageFolderError(f"{name}: {exc}") from None
    return _fit(image, (height, width))


class UnusablePhoto(Exception):
    """Why one image file cannot be used, without its name: :func:`read_photo` turns it into an
    :class:`~tlbook.data.folders.ImageFolderError` naming the file; a folder check lists it by path."""


def open_photo(path: Path):
    """Open an image file with Pillow (lazily: :func:`upright_rgb` decodes it), refusing what is not
    an image of :data:`PHOTO_FORMATS` or is larger than Pillow's ``MAX_IMAGE_PIXELS``.

    Raises:
        UnusablePhoto: why (not an image, a link to nothing, too large, unreadable, another format).
    """
    from PIL import Image, UnidentifiedImageError

    if path.is_symlink() and not path.exists():
        raise UnusablePhoto("a link to nothing (or a loop of links); delete it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise UnusablePhoto(
            "not an image Pillow can read (a text file, or a type such as HEIC); "
            "convert it to JPEG or PNG, or remove it"
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UnusablePhoto(f"too large to decode safely ({exc}); resize it") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's refusal (permissions, a folder named *.jpg)
            raise UnusablePhoto(f"cannot be opened ({exc.strerror})") from None
        raise UnusablePhoto(f"corrupt or truncated ({exc}); replace it with an intact copy or remove it") from None
    if image.format not in PHOTO_FORMATS:
        image.close()
        raise UnusablePhoto(
            f"a {image.format} image; tlbook reads {', '.join(PHOTO_FORMATS)}: convert it to JPEG or PNG"
        )
    return image


def upright_rgb(image, background: tuple[int, int, int] = BACKGROUND):
    """Decode a Pillow image completely and make it upright (its EXIF orientation applied), opaque
    (transparent pixels composited on ``background``) and RGB.

    Returns:
        ``(image, done)``: the RGB Pillow image, and what that took, one phrase each
        (``"convert CMYK to RGB"``...), for a report.

    Raises:
        UnusablePhoto: the image is corrupt, truncated or too large to decode safely.
    """
    from PIL import Image, ImageOps

    done = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UnusablePhoto(f"too large to decode safely ({exc}); resize it") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnusablePhoto(f"corrupt or truncated ({exc}); replace it with an intact copy or remove it") from None
    if orientation not in (1, None):
        done.append("apply the EXIF orientation (the photo is stored turned)")
    mode = upright.mode
    transparent = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in upright.info
    if transparent:
        rgba = upright.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            done.append(f"composite its transparent pixels on grey {background}")
            canvas = Image.new("RGBA", rgba.size, (*background, 255))
            upright = Image.alpha_composite(canvas, rgba)
        else:
            upright = rgba
    elif mode in ("L", "1", "I", "I;16", "F"):
        done.append("convert grayscale to RGB")
    elif mode == "P":
        done.append("convert its palette to RGB")
    elif mode == "CMYK":
        done.append("convert CMYK to RGB")
    return (upright.convert("RGB") if upright.mode != "RGB" else upright), done


def _from_array(array):
    from PIL import Image

    a = np.asarray(array)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4)):
        if a.dtype != np.uint8:
            if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 255):
                raise ValueError(f"an image array must hold values 0..255; got {np.nanmin(a)}..{np.nanmax(a)}")
            a = np.round(a).astype(np.uint8)
        return Image.fromarray(a)
    raise ValueError(f"an image array is (height, width), (height, width, 3) or (height, width, 4); got {a.shape}")


def _fit(image, size: tuple[int, int]) -> np.ndarray:
    """The largest centred region of ``size``'s aspect ratio, resized (Lanczos) to ``size``."""
    from PIL import Image, ImageOps

    height, width = size
    if image.size != (width, height):
        image = ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def _background(background) -> tuple[int, int, int]:
    values = tuple(background) if isinstance(background, (tuple, list)) else ()
    if len(values) != 3 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255 for v in values
    ):
        raise ValueError(f"background must be an RGB colour of three integers 0..255, got {background!r}")
    return tuple(int(v) for v in values)
