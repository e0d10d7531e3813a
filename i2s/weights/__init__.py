from .registry import REGISTRY, Checkpoint, get
from .fetch import fetch, cached_path, i2s_home, import_file, verify, WeightsUnavailable
from .converted import load_converted
from .tf_pickle import convert_pickle, load_tf_pickle, UnsafePickleError, WeightsFormatError
