"""i2s.identity: dlib face descriptors and the smile measure on the evaluation photos."""

from __future__ import annotations

import numpy as np
import torch

from i2s import identity
from i2s.data import expression_pairs, load_target


def _pairs():
    pairs = expression_pairs()
    neutral = torch.cat([load_target(a, 64, 0.7) for _, a, _ in pairs])
    smiling = torch.cat([load_target(b, 64, 0.7) for _, _, b in pairs])
    return neutral, smiling


def test_descriptor_distance_tells_people_apart():
    neutral, smiling = _pairs()
    d = identity.descriptors(neutral)
    assert d.shape == (len(neutral), 128) and np.isfinite(d).all()
    same = identity.identity_distance(neutral, neutral.flip(-1))  # a mirror image: the same person
    others = np.linalg.norm(d[:, None] - d[None], axis=-1)[np.triu_indices(len(d), 1)]
    assert same.max() < identity.SAME_PERSON < np.median(others)
    # same person, other expression: nearer than other people on average
    assert identity.identity_distance(neutral, smiling).mean() < others.mean()


def test_smile_ratio_is_larger_for_the_smiling_photo_of_each_person():
    neutral, smiling = _pairs()
    a, b = identity.smile_ratio(neutral), identity.smile_ratio(smiling)
    assert (b > a).all() and 0.6 < a.mean() < 0.9 < b.mean() < 1.2


def test_uint8_and_tensor_inputs_agree():
    neutral, _ = _pairs()
    u8 = identity.to_uint8(neutral[:2])
    assert u8.dtype == np.uint8 and u8.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(identity.descriptors(u8), identity.descriptors(neutral[:2]), atol=1e-6)


def test_unmeasured_framing_gives_nan_with_the_reason_not_an_error():
    faces = torch.zeros(3, 3, 64, 64)
    said: list[str] = []
    for fn, shape in ((identity.descriptors, (3, 128)), (identity.smile_ratio, (3,))):
        out = identity.or_nan("face measure", lambda: fn(faces, 0.9), shape, say=said.append)
        assert out.shape == shape and np.isnan(out).all()
    assert len(said) == 2 and all("zoom 0.9" in m and "0.7" in m for m in said)
    # a real failure that is not a missing measure still raises
    try:
        identity.or_nan("x", lambda: 1 / 0, (1,))
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("or_nan swallowed an unexpected error")


def test_face_detected_finds_the_aligned_faces_and_not_noise_or_a_shifted_face():
    neutral, smiling = _pairs()
    faces = torch.cat([neutral, smiling])
    assert identity.face_detected(faces).all()
    noise = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert not identity.face_detected(noise).any()
    # the face moved out of the aligned box: a face, but not where the aligned measures look
    shifted = torch.roll(faces[:2], shifts=(28, 28), dims=(2, 3))
    assert not identity.face_detected(shifted).any()


def test_face_score_ranks_faces_above_noise_and_is_floored():
    neutral, _ = _pairs()
    noise = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    s_faces, s_noise = identity.face_score(neutral), identity.face_score(noise)
    assert (s_faces >= 0).all() and (s_noise < 0).all() and (s_noise >= identity.FACE_SCORE_FLOOR).all()
    np.testing.assert_array_equal(identity.face_detected(neutral), s_faces >= 0)
