import numpy as np
import pytest

from tlbook import backbones, data, models


def test_set_trainable(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile)
    assert models.set_trainable(backbone, None) == 0
    n3 = models.set_trainable(backbone, "conv3")
    assert n3 == 1  # conv3's kernel; bn3 stays frozen (its gamma and beta too)
    assert not backbone.get_layer("conv2").trainable and not backbone.get_layer("bn3").trainable
    assert models.set_trainable(backbone, "conv3", keep_batchnorm_frozen=False) == 3  # + bn3 gamma, beta
    assert models.set_trainable(backbone, "conv1") > n3
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        models.set_trainable(backbone, "conv9")


def test_prediction_is_softmax_of_theta_phi_plus_b(tiny_profile, tmp_cache):
    """The article's prediction = θ·φ(x), checked on a real trained model."""
    task = data.target_task(tiny_profile)
    model, backbone = models.transfer_classifier(task.num_classes, tiny_profile, learning_rate=1e-2)
    assert backbone.trainable_weights == [] and len(model.trainable_weights) == 2  # only θ and b learn
    model.fit(task.train.x.astype("float32"), task.train.y, epochs=2, verbose=0)
    theta, b = models.head_parameters(model)
    assert theta.shape == (backbone.output_shape[-1], task.num_classes) and b.shape == (task.num_classes,)
    x = task.test.x[:32]
    by_hand = models.predict_by_hand(backbones.extract_features(backbone, x), theta, b)
    np.testing.assert_allclose(model.predict(x.astype("float32"), verbose=0), by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="no layer 'theta'"):
        models.head_parameters(model, head="theta")
    with pytest.raises(ValueError, match="do not chain"):
        models.predict_by_hand(np.zeros((2, 3)), theta, b)


def test_transfer_classifier_rejects_bad_learning_rate(tiny_profile, tmp_cache):
    with pytest.raises(ValueError, match="learning_rate"):
        models.transfer_classifier(3, tiny_profile, learning_rate=0)


def test_batchnorm_layers_finds_nested_layers_with_their_path(tiny_profile):
    model = models.build_transfer_model(
        2, backbone="small_cnn", weights=None, input_shape=tiny_profile.input_shape, head_units=4
    )
    found = models.batchnorm_layers(model)
    assert [name for name, _ in found] == ["base/bn1", "base/bn2", "base/bn3"]
    assert found[2][1] is model.get_layer("base").get_layer("bn3")
    assert models.batchnorm_layers(backbones.pixel_backbone(tiny_profile)) == []


def test_phi_theta_diagram_is_read_from_the_model(tiny_profile):
    backbone = backbones.random_backbone(tiny_profile, seed=0)
    backbone.trainable = False
    model = backbones.build_classifier(backbone, 5)
    d = backbone.output_shape[-1]
    text = models.phi_theta_mermaid(model)
    lines = text.splitlines()
    assert lines[0] == "graph LR" and lines[-1].strip() == "X --> P --> F --> T --> Y"
    assert "16×16×3" in text and f"{d} features" in text and f"{d}×5 weights + 5 biases" in text
    assert f"{backbone.count_params():,} parameters, frozen" in text
    backbone.trainable = True
    assert "parameters, trainable" in models.phi_theta_mermaid(model)
    block = models.phi_theta_diagram(model).data
    assert block.startswith("```mermaid\ngraph LR\n") and block.endswith("\n```")
    with pytest.raises(ValueError, match="no layer 'base'"):
        models.phi_theta_mermaid(model, backbone="base")
