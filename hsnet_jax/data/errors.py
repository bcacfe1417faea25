"""The data package's user-facing errors (all `HSNetError`: printed as one line, no traceback)."""

from hsnet_jax.errors import HSNetError


class DatasetNotPreparedError(HSNetError):
    """A split was requested from a dataset that has not been prepared in `data_dir`."""


class MissingSplitError(HSNetError):
    """A prepared dataset has no such split (an image_folder without validation/, say)."""


class UnknownDatasetError(HSNetError):
    """The dataset name (or its config) is not one this package builds."""


class LayoutError(HSNetError):
    """The manual download is missing or not in the layout the builder expects."""


class LabelError(HSNetError):
    """Label lines without images, images without labels, or unknown label values."""


class CorruptImageError(HSNetError):
    """Images that cannot be decoded (preparation stops unless `skip_corrupt`)."""


class SamplerError(HSNetError):
    """A batch size that does not fit the dataset or the number of processes."""


class NoSubjectsError(HSNetError):
    """A subject-independent protocol (--folds) asked of a database whose examples name no subject."""
