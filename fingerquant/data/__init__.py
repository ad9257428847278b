"""CapFingerId recordings to 8 x 8 touch images: reading, blob extraction, caching, splits."""

from fingerquant.data.blobs import CELL_SCALE, BlobRule, extract_blobs
from fingerquant.data.cache import load_touches
from fingerquant.data.datamodule import CapFingerIdDataModule
from fingerquant.data.labels import FINGERS, HANDS, class_names
from fingerquant.data.preprocess import TouchSet, find_recordings, process_folder
from fingerquant.data.reader import Recording, read_recording

__all__ = [
    "CELL_SCALE",
    "FINGERS",
    "HANDS",
    "BlobRule",
    "CapFingerIdDataModule",
    "Recording",
    "TouchSet",
    "class_names",
    "extract_blobs",
    "find_recordings",
    "load_touches",
    "process_folder",
    "read_recording",
]
