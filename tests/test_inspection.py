"""tlbook.models.inspection: which layers train, the BatchNorm layers, the φ/θ diagram and the layer table."""

import pytest

from tlbook import backbones, models


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


def test_set_trainable_keeps_batchnorm_frozen(tiny_profile, tiny_source_cache):
    base = backbones.pretrained_backbone(tiny_profile)
    models.set_trainable(base, "conv2")
    trainable = {layer.name for layer in base.layers if layer.trainable}
    assert {"conv2", "conv3", "relu3"} <= trainable and not {"bn2", "bn3", "conv1"} & trainable
    models.set_trainable(base, "conv2", keep_batchnorm_frozen=False)
    assert base.get_layer("bn3").trainable
