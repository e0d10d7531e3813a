"""i2s.features: the frozen ImageNet EfficientNet-Lite0 loads exactly and names ImageNet classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from i2s import features

EVAL = REPO / "data" / "i2s-eval"
# ImageNet-1k indices: 281 tabby, 285 Egyptian cat, 162 beagle, 234 Rottweiler, 187 Yorkshire terrier,
# 468 cab, 511 convertible, 817 sports car
EXPECTED = {"cats/tabby_portrait_colorweaver.jpg": 281, "cats/chelsea_tabby.jpg": 285,
            "dogs/beagle_pexels.jpg": 162, "dogs/rottweiler_head.jpg": 234, "dogs/yorkshire_terrier.jpg": 187,
            "cars/nyc_taxi_pexels.jpg": 468, "cars/red_mustang_convertible_imagenet.jpg": 511,
            "cars/yellow_sportscar_pixabay.jpg": 817}


def _batch(names) -> torch.Tensor:
    ims = [np.array(Image.open(EVAL / n).convert("RGB").resize((224, 224), Image.BICUBIC)) for n in names]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def net():
    return features.load_feature_net()


def test_weights_come_from_the_installed_wheel():
    p = features.find_weights()
    assert p.name == features.WEIGHTS_FILE and "site-packages" in str(p) and p.stat().st_size == 18_826_032


def test_imagenet_predictions(net):
    x = _batch(EXPECTED)
    with torch.no_grad():
        top1 = net(features.preprocess(x)).argmax(1).tolist()
    assert top1 == list(EXPECTED.values())


def test_preprocessing_matters(net):
    """ImageNet mean/std instead of (x - 127) / 128 changes the logits: the test above would see a slip."""
    x = _batch(list(EXPECTED)[:2])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        a = net(features.preprocess(x))
        b = net(((x + 1) / 2 - mean) / std)
    assert (a - b).abs().max() > 1.0


def test_equal_logits_to_the_reference_package(net):
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    ref = ref_pkg.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(features.find_weights(), weights_only=True), strict=True)
    ref.eval()
    x = features.preprocess(_batch(list(EXPECTED)[:4]))
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))


def test_features_shapes_and_frozen(net):
    x = torch.zeros(2, 3, 128, 128, requires_grad=True)
    fs = net.features(features.preprocess(x))
    assert [tuple(f.shape[1:]) for f in fs] == [(24, 32, 32), (40, 16, 16), (112, 8, 8), (320, 4, 4)]
    sum(f.square().mean() for f in fs).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
    net.train()
    assert not net.model.training  # batch norms stay frozen


def test_key_map_checks_shapes():
    sd = torch.load(features.find_weights(), weights_only=True)
    import timm
    own = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    k = next(iter(sd))
    bad = dict(sd)
    bad[k] = torch.zeros(1)
    with pytest.raises(ValueError, match="does not fit"):
        features._timm_state_dict(bad, own)
    short = dict(list(sd.items())[:-3])
    with pytest.raises(ValueError, match="tensors"):
        features._timm_state_dict(short, own)
