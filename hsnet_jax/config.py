"""The fields every training config shares, with the paper's recipe as defaults (section 3
of docs/design.md). Each file in `configs/` starts from `base_config` and sets what differs.

Every field, its meaning and its default are listed in docs/training.md ("## Configs").
"""

from __future__ import annotations

import ml_collections

from hsnet_jax.errors import HSNetError

THRESHOLD_MODES = ("rel", "abs")  # ReduceLROnPlateau's threshold modes
DTYPES = ("float32", "bfloat16")  # config.dtype: the compute dtype (hsnet_jax.models.DTYPES)
DATA_PLACEMENTS = ("auto", "device", "host", "stream")  # config.data_placement (hsnet_jax.training.placement)
CLASS_BALANCES = ("none", "sampler", "loss")  # config.class_balance (hsnet_jax.training.targets)
# Sane upper bounds: beyond them an edited config would only exhaust memory, as a traceback.
MAX_IMAGE_SIZE = 1024  # the model input; the paper's is 224
MAX_EVAL_BATCH_SIZE = 65536


def base_config(dataset: str) -> ml_collections.ConfigDict:
    """The paper's recipe for `dataset`: Adam(0.01, 0.9, 0.999), reduce-on-plateau on the
    validation loss (factor 0.1, patience 20 epochs), 500 epochs, batch 32, flip + rotation
    within +-5 degrees, 224x224 input, DIB + FGAL on, KTL off until a stem is given."""
    c = ml_collections.ConfigDict()
    c.dataset = dataset  # a name `hsnet_jax.data.load_split` knows, e.g. "raf_db", "rafd/subject_disjoint"
    c.data_dir = ""  # "" = $HSNET_DATA_DIR or ~/hsnet_data
    c.image_size = 224
    c.batch_size = 32  # global, over all devices and hosts
    c.num_epochs = 500
    c.seed = 0
    c.dtype = "float32"  # or "bfloat16": activations in bf16, parameters and BN statistics float32
    c.max_rotation = 5.0  # degrees; plus a random horizontal flip
    # "none" (the paper's), "sampler" (epochs drawn inversely to class frequency, DAN's) or "loss"
    # (inverse-frequency-weighted cross-entropy): hsnet_jax.training.targets
    c.class_balance = "none"
    # True: the test split is also evaluated after every epoch (metrics.jsonl test_accuracy), for the
    # "best epoch on test" number other FER papers report; never used for any decision
    c.report_test_each_epoch = False

    # fgal_standardize=False: FGAL as eq. 11-17 literally (no standardised psi, He-initialised gates)
    c.model = ml_collections.ConfigDict(dict(use_dib=True, use_fgal=True, fgal_standardize=True))
    c.ktl = ml_collections.ConfigDict(dict(stem_checkpoint=""))  # convert/port_stem.py's output; "" = off

    c.optimizer = ml_collections.ConfigDict(dict(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-8))
    # torch.optim.lr_scheduler.ReduceLROnPlateau (mode "min"): its names, defaults and meaning
    # (hsnet_jax/training/plateau.py), fed the validation loss once per epoch.
    c.plateau = ml_collections.ConfigDict(dict(factor=0.1, patience=20, threshold=1e-4,
                                               threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8))

    c.steps_per_dispatch = 16  # train steps run in one device call (lax.scan); speed only
    c.eval_batch_size = 256
    c.checkpoint_keep = 3  # latest per-epoch checkpoints kept (the best one is kept apart)
    c.max_train_examples = 0  # > 0: train on the first N training examples only (smoke runs)
    c.max_eval_examples = 0  # > 0: validate on the first N validation examples only
    c.distributed = "auto"  # "auto" (initialise on a detected cluster), "yes", "no"
    # Where the training split lives: "auto", "device", "host" or "stream" (hsnet_jax.training.placement).
    c.data_placement = "auto"
    c.max_device_bytes = 0  # > 0: auto may put at most this many bytes of training data on a device
    c.max_host_bytes = 0  # > 0: ... and at most this many in host memory (else it streams)
    return c


def check_config(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
    """One-line errors for values a run cannot use (types are already checked by the lock):
    the one place that checks a config, before a run takes its lock or compiles anything."""
    positive = ("image_size", "batch_size", "num_epochs", "steps_per_dispatch", "eval_batch_size",
                "checkpoint_keep")
    for key in positive:
        if isinstance(config[key], bool) or not isinstance(config[key], int):
            raise HSNetError(f"config.{key} must be an integer, got {config[key]!r}")
        if config[key] <= 0:
            raise HSNetError(f"config.{key} must be positive, got {config[key]}")
    if config.image_size < 75:
        raise HSNetError(f"config.image_size must be at least 75 (HSNet's smallest input), got {config.image_size}")
    for key, bound in (("image_size", MAX_IMAGE_SIZE), ("eval_batch_size", MAX_EVAL_BATCH_SIZE)):
        if config[key] > bound:
            raise HSNetError(f"config.{key} must be at most {bound}, got {config[key]}")
    if config.batch_size < 2 * num_devices:
        # BatchNorm (FGAL's standardisation above all) needs two examples per device; PyTorch
        # refuses a batch of one in training too.
        raise HSNetError(f"config.batch_size must give each of the {num_devices} devices at least 2 examples "
                         f"(BatchNorm statistics), got {config.batch_size}")
    if config.distributed not in ("auto", "yes", "no"):
        raise HSNetError(f"config.distributed must be auto, yes or no, got {config.distributed!r}")
    if config.dtype not in DTYPES:
        raise HSNetError(f"config.dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    if config.class_balance not in CLASS_BALANCES:
        raise HSNetError(f"config.class_balance must be one of {', '.join(CLASS_BALANCES)}, "
                         f"got {config.class_balance!r}")
    if config.data_placement not in DATA_PLACEMENTS:
        raise HSNetError(f"config.data_placement must be one of {', '.join(DATA_PLACEMENTS)}, "
                         f"got {config.data_placement!r}")
    for key in ("max_device_bytes", "max_host_bytes"):
        if config[key] < 0:
            raise HSNetError(f"config.{key} must be 0 (no cap) or positive, got {config[key]}")
    if config.optimizer.learning_rate <= 0:
        raise HSNetError(f"config.optimizer.learning_rate must be positive, got {config.optimizer.learning_rate}")
    check_plateau(config.plateau)


def check_plateau(plateau: ml_collections.ConfigDict) -> None:
    """One-line errors for settings PyTorch's scheduler refuses or that cannot mean anything."""
    if not 0.0 < plateau.factor < 1.0:
        raise HSNetError(f"config.plateau.factor must be in (0, 1), got {plateau.factor}")
    for key in ("patience", "cooldown"):
        if plateau[key] < 0:
            raise HSNetError(f"config.plateau.{key} must be >= 0 (epochs), got {plateau[key]}")
    if plateau.threshold_mode not in THRESHOLD_MODES:
        raise HSNetError(f"config.plateau.threshold_mode must be rel or abs, got {plateau.threshold_mode!r}")
    if plateau.threshold < 0 or (plateau.threshold_mode == "rel" and plateau.threshold >= 1):
        bound = "in [0, 1) with threshold_mode rel" if plateau.threshold_mode == "rel" else ">= 0"
        raise HSNetError(f"config.plateau.threshold must be {bound}, got {plateau.threshold}")
    for key in ("min_lr", "eps"):
        if plateau[key] < 0:
            raise HSNetError(f"config.plateau.{key} must be >= 0, got {plateau[key]}")
