"""The article's program (its §5.2), corrected: plain Keras 3, one file to take home.

    python article_corrected.py DATA [--backbone resnet50] [--weights imagenet] [--save model.keras]
    python article_corrected.py --load model.keras --predict photo.jpg [photo.jpg ...]

DATA holds the article's layout, ``train/<class>/*`` and ``test/<class>/*`` (JPEG, PNG, BMP or GIF).
What changed from the article, and why (Chapter 4 of the book):

1. ``num_classes`` comes from the folders; the article uses it without defining it (``NameError``).
2. Validation is held out of ``train/``; the article validated on its test folder, and the test
   folder is read once, at the end, with the training folder's class list.
3. The backbone's own preprocessing is the model's first layer; the article fed ResNet50 pixels
   in 0..1 (``rescale=1./255``), a scale its ImageNet weights never saw.
4. ``keras.utils.image_dataset_from_directory`` replaces the deprecated ``ImageDataGenerator``,
   with ``crop_to_aspect_ratio=True``; a new photo is cropped and resized the same way.
5. The new head's kernel starts at zero, so every class gets 1/K and the loss before training is
   exactly ln K; it is measured before training (a warning if not: the labels or K are wrong).
6. Two phases: the head on the frozen base, then the top of the base unfrozen with every
   BatchNorm layer kept frozen, compiled again at a 30x lower learning rate, epochs counted on;
   phase 2's weights are kept only if they beat phase 1's on validation.

``--backbone efficientnet_lite0`` switches in EfficientNet-Lite0 with ImageNet weights that need
no download (from the ``tlbook`` package, the book's companion); ResNet50's ImageNet weights are
downloaded by Keras the first time (``--weights none``: random weights, offline).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import keras
import numpy as np

#: The layers each backbone unfreezes in phase 2 (names start with these): its last block.
TOP_BLOCK = {"resnet50": ("conv5_",), "efficientnet_lite0": ("block15", "head")}
LEARNING_RATE = 1e-3  # phase 1 (Adam); phase 2 uses a 30x smaller one


@keras.saving.register_keras_serializable(package="article_corrected")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 in; ResNet50's ImageNet preprocessing out (BGR, ImageNet channel means subtracted)."""

    def call(self, images):
        return keras.applications.resnet50.preprocess_input(images)


def load_folders(data: Path, image_size: tuple[int, int], seed: int):
    """Training, validation (20 % of ``train/``) and test datasets, and the class names."""
    common = {"image_size": image_size, "crop_to_aspect_ratio": True, "batch_size": 32}
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        data / "train", validation_split=0.2, subset="both", seed=seed, **common
    )
    class_names = train_ds.class_names
    test_ds = keras.utils.image_dataset_from_directory(
        data / "test", shuffle=False, class_names=class_names, **common
    )
    return train_ds, val_ds, test_ds, class_names


def build_base(backbone: str, weights: str | None, image_size: tuple[int, int]):
    """The pretrained base, taking RGB 0..255 images: its preprocessing is its first layer."""
    shape = (*image_size, 3)
    if backbone == "resnet50":
        image = keras.Input(shape, name="image")
        preprocessed = CaffePreprocess(name="preprocess")(image)
        return keras.applications.ResNet50(
            include_top=False, weights=weights, input_tensor=preprocessed
        )
    from tlbook.backbones import efficientnet_lite0  # ImageNet weights with no download

    return efficientnet_lite0(shape, include_top=False, weights=weights)


def build_model(base, num_classes: int, image_size: tuple[int, int]):
    """The article's architecture: frozen base, global average pooling, Dense(1024), Dense(K)."""
    base.trainable = False  # before compile: Keras reads it there
    image = keras.Input((*image_size, 3), name="image")
    x = base(image, training=False)
    if len(x.shape) == 4:  # a feature map: pool it (EfficientNet-Lite0's base pools already)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(1024, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(  # a zero kernel: the first loss is exactly ln K
        num_classes, activation="softmax", kernel_initializer="zeros", name="head"
    )(x)
    return keras.Model(image, outputs)


def compile_model(model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def unfreeze_top(base, prefixes: tuple[str, ...]) -> None:
    """Unfreeze the layers whose names start with ``prefixes``; every BatchNorm layer stays frozen."""
    base.trainable = True
    for layer in base.layers:
        top = layer.name.startswith(prefixes)
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)


def load_photo(path, image_size: tuple[int, int]) -> np.ndarray:
    """One photo as the training photos were read: RGB, centre cropped to the aspect ratio, resized."""
    image = keras.utils.img_to_array(keras.utils.load_img(path, color_mode="rgb"))
    return np.asarray(keras.layers.Resizing(*image_size, crop_to_aspect_ratio=True)(image))[
        None
    ]


def train(args) -> None:
    keras.utils.set_random_seed(args.seed)
    image_size = (args.image_size, args.image_size)
    train_ds, val_ds, test_ds, class_names = load_folders(
        Path(args.data), image_size, args.seed
    )
    num_classes = len(class_names)
    weights = None if args.weights == "none" else args.weights
    base = build_base(args.backbone, weights, image_size)
    model = build_model(base, num_classes, image_size)
    compile_model(model, LEARNING_RATE)

    loss, _ = model.evaluate(val_ds, verbose=0)
    ln_k = math.log(num_classes)
    print(
        f"{num_classes} classes {class_names}; loss before training {loss:.3f}, ln K = {ln_k:.3f}"
    )
    if not 0.9 * ln_k <= loss <= 1.1 * ln_k:
        print("warning: a fresh zero-initialised head starts at ln K; this head is not (Chapter 5)")

    best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=2, restore_best_weights=True
    )
    head = model.fit(
        train_ds, validation_data=val_ds, epochs=args.head_epochs, callbacks=[best], verbose=2
    )
    phase1_weights, phase1_loss = model.get_weights(), min(head.history["val_loss"])
    unfreeze_top(base, TOP_BLOCK[args.backbone])
    compile_model(model, LEARNING_RATE / 30)  # again: Keras reads trainable at compile time
    done = len(head.epoch)  # epochs is an end index: done + N trains up to N more
    tuned = model.fit(
        train_ds,
        validation_data=val_ds,
        initial_epoch=done,
        epochs=done + args.finetune_epochs,
        callbacks=[best],  # restores phase 2's best epoch, which may still lose to phase 1
        verbose=2,
    )
    if min(tuned.history["val_loss"]) >= phase1_loss:
        model.set_weights(phase1_weights)
        print("phase 2 did not lower the validation loss: keeping phase 1's weights")
    _, accuracy = model.evaluate(test_ds, verbose=0)
    print(f"test accuracy {accuracy:.3f} on {sum(len(y) for _, y in test_ds)} images")
    if args.save:
        model.save(args.save)
        Path(args.save).with_suffix(".json").write_text(
            json.dumps({"class_names": class_names})
        )
        print(f"saved {args.save} (class names in {Path(args.save).with_suffix('.json')})")
    predict(model, class_names, args.predict, image_size)


def predict(model, class_names, photos, image_size) -> None:
    for photo in photos:
        p = model.predict(load_photo(photo, image_size), verbose=0)[0]
        print(f"{photo}: {class_names[int(p.argmax())]} ({p.max():.2f})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", help="folder with train/<class>/ and test/<class>/")
    parser.add_argument("--backbone", choices=sorted(TOP_BLOCK), default="resnet50")
    parser.add_argument("--weights", choices=("imagenet", "none"), default="imagenet")
    parser.add_argument(
        "--image-size", type=int, default=224, help="pixels per side (default 224)"
    )
    parser.add_argument("--head-epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained model here (a .keras file)")
    parser.add_argument(
        "--load", help="a model this script saved: predict with it, no training"
    )
    parser.add_argument(
        "--predict", nargs="*", default=[], help="photos to classify after training"
    )
    args = parser.parse_args(argv)
    if args.load:
        model = keras.saving.load_model(args.load)  # CaffePreprocess is registered above
        class_names = json.loads(Path(args.load).with_suffix(".json").read_text())[
            "class_names"
        ]
        predict(model, class_names, args.predict, tuple(model.input_shape[1:3]))
    elif args.data:
        train(args)
    else:
        parser.error("give DATA to train, or --load MODEL --predict PHOTO ...")


if __name__ == "__main__":
    main()
