"""Data for the book: the tasks the chapters train on, and the image folders a reader brings.

One idea a learner meets per submodule:

- :mod:`tlbook.data.digits` - the digits tasks: the quick profile's source and target tasks drawn
  from real handwritten digits, and the :class:`~tlbook.data.digits.Split` and
  :class:`~tlbook.data.digits.Task` they come as;
- :mod:`tlbook.data.sampling` - few-shot sampling: a few labelled images per class, and what is
  held out for validation;
- :mod:`tlbook.data.folders` - image folders: the ``train/<class>/`` trees Keras's folder loaders
  read, written, checked and loaded;
- :mod:`tlbook.data.debian` - reading a Debian package (``.deb``) and the data tar inside it;
- :mod:`tlbook.data.photos` - real photos, offline: Tux Paint's stamps as a five-class photo task;
- :mod:`tlbook.data.photo` - one photo as a model takes it: upright, opaque, RGB, cropped and
  resized, the same for training, test and new photos;
- :mod:`tlbook.data.photo_folder` - your own photo folder: checked whole, then read photo by
  photo (Chapter 9).

Every public name of the submodules that a chapter uses is importable from here as well
(``from tlbook import data; data.target_task()``). Importing this package does not import
TensorFlow or Keras: the functions that need them import them when called.
"""

from tlbook.data.debian import data_tar
from tlbook.data.digits import (
    Split,
    Task,
    counts_with_share,
    digits_splits,
    invert_task,
    load_digits_gray,
    make_task,
    place_digits,
    require_digits,
    source_task,
    target_task,
)
from tlbook.data.folders import (
    IMAGE_FOLDER_MARK,
    IMAGE_SUFFIXES,
    KERAS_IMAGE_FORMATS,
    ImageFolderError,
    cached_folder,
    check_image_file,
    class_folders,
    image_size_pair,
    load_image_folder,
    load_image_folders,
    profile_image_folder,
    validate_image_folder,
    write_image_folder,
    write_image_tree,
)
from tlbook.data.photo import BACKGROUND, PHOTO_FORMATS, UnusablePhoto, open_photo, read_photo, upright_rgb
from tlbook.data.photo_folder import (
    FOLDER_SPLITS,
    JUNK_FILES,
    PHOTOS_DIR_ENV,
    REPORT_WIDTH,
    FileNote,
    FolderReport,
    PhotoSplits,
    check_photo_folder,
    load_photo_folder,
    photos_credit,
    photos_dir,
)
from tlbook.data.photos import (
    DRAWING_COLOUR_SHARE,
    NOT_PHOTO_FOLDERS,
    PHOTO_CLASSES,
    PHOTOS_CREDIT,
    composite_on_background,
    flat_colour_share,
    photos_folder,
    photos_task,
    stamp_photos,
)
from tlbook.data.sampling import hold_out, sample_indices_per_class, sample_per_class, split_labelled

__all__ = [
    # digits
    "Split",
    "Task",
    "load_digits_gray",
    "place_digits",
    "require_digits",
    "make_task",
    "source_task",
    "target_task",
    "invert_task",
    "counts_with_share",
    "digits_splits",
    # sampling
    "sample_indices_per_class",
    "sample_per_class",
    "split_labelled",
    "hold_out",
    # folders
    "IMAGE_SUFFIXES",
    "IMAGE_FOLDER_MARK",
    "write_image_folder",
    "write_image_tree",
    "cached_folder",
    "ImageFolderError",
    "KERAS_IMAGE_FORMATS",
    "class_folders",
    "check_image_file",
    "validate_image_folder",
    "image_size_pair",
    "load_image_folder",
    "load_image_folders",
    "profile_image_folder",
    # photos
    "PHOTO_CLASSES",
    "NOT_PHOTO_FOLDERS",
    "DRAWING_COLOUR_SHARE",
    "PHOTOS_CREDIT",
    "flat_colour_share",
    "composite_on_background",
    "stamp_photos",
    "photos_task",
    "photos_folder",
    # photo
    "PHOTO_FORMATS",
    "BACKGROUND",
    "UnusablePhoto",
    "open_photo",
    "upright_rgb",
    "read_photo",
    # photo_folder
    "PHOTOS_DIR_ENV",
    "JUNK_FILES",
    "FOLDER_SPLITS",
    "REPORT_WIDTH",
    "FileNote",
    "FolderReport",
    "PhotoSplits",
    "photos_dir",
    "photos_credit",
    "check_photo_folder",
    "load_photo_folder",
    # debian
    "data_tar",
]
